"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py 와 call_tasks.py 에 있다.
"""

from course import Needs
from practice15.tasks import COUNTDOWN_SECONDS, MAX_RETRIES, RETRY_SECONDS, SLOW_SECONDS, TIME_LIMIT_SECONDS

NEEDS = Needs(
    waits={
        "2. eager로 실행한 slow 작업": SLOW_SECONDS,
        "2. 실제 워커의 시간 제한": TIME_LIMIT_SECONDS,
        "2. 실제 워커의 countdown": COUNTDOWN_SECONDS,
        "2. 실제 워커의 재시도 간격": MAX_RETRIES * RETRY_SECONDS,
    },
)
