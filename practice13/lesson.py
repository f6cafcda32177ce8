"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py 와 call_tasks.py 에 있다.
이 실습의 call_tasks 는 워커를 직접 띄우고 멈춘다. 그래서 실행기가 띄울 워커가 없다(workers=()).
"""

from course import Needs
from practice13.tasks import GRACE_SECONDS, SETTLE_SECONDS, SHORT_WORK_SECONDS, SOFT_SHUTDOWN_SECONDS, WORK_SECONDS

NEEDS = Needs(
    workers=(),
    starts_workers=True,
    waits={
        "1. warm shutdown: 짧은 작업": SHORT_WORK_SECONDS,
        "2. 유예 시간 뒤의 SIGKILL": GRACE_SECONDS,
        "2. 새 워커가 다시 실행하는 작업": WORK_SECONDS + SETTLE_SECONDS,
        "3. soft shutdown": SOFT_SHUTDOWN_SECONDS,
        "3. 새 워커가 다시 실행하는 작업": WORK_SECONDS + SETTLE_SECONDS,
    },
)
