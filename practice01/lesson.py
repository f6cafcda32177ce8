"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py 와 call_tasks.py 에 있다.
"""

from course import Needs
from practice01.tasks import CLEANUP_SECONDS, HARD_LIMIT_SECONDS, KILL_SETTLE_SECONDS, SOFT_LIMIT_SECONDS, WORK_SECONDS

NEEDS = Needs(
    waits={
        "1. unlimited": WORK_SECONDS,
        "2. hard_limited": HARD_LIMIT_SECONDS + KILL_SETTLE_SECONDS,
        "3. unlimited 두 개 (나란히)": WORK_SECONDS,
        "4. batch_with_cleanup": SOFT_LIMIT_SECONDS + CLEANUP_SECONDS,
        "5. slow_cleanup": HARD_LIMIT_SECONDS + KILL_SETTLE_SECONDS,
    },
)
