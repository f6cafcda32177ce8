"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py 와 call_tasks.py 에 있다.
"""

from course import Needs, WorkerSpec
from practice12.tasks import COUNTDOWN_SECONDS, HOLD_SECONDS, LONG_COUNTDOWN_SECONDS, SETTLE_SECONDS

NEEDS = Needs(
    workers=(WorkerSpec(), WorkerSpec(module="redis_tasks")),
    waits={
        "1. 우선순위: 먼저 보낸 작업 (acks_late 없이)": HOLD_SECONDS,
        "1. 우선순위: 먼저 보낸 작업 (acks_late)": HOLD_SECONDS,
        "2. Redis 우선순위: 먼저 보낸 작업": HOLD_SECONDS,
        "3. 클래식 큐의 countdown": COUNTDOWN_SECONDS,
        "3. 쿼럼 큐의 countdown": COUNTDOWN_SECONDS,
        "4. visibility_timeout 보다 긴 countdown": LONG_COUNTDOWN_SECONDS + SETTLE_SECONDS,
    },
)
