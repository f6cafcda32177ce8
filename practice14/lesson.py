"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py 와 call_tasks.py 에 있다.
"""

from course import Needs
from practice14.tasks import HEARTBEAT_SECONDS, WORK_SECONDS

NEEDS = Needs(
    workers=(),
    starts_workers=True,  # call_tasks 가 워커 둘을 띄우고, 하나를 SIGSTOP으로 멈췄다가 SIGCONT로 깨운다
    waits={
        "1. 멈춘 워커를 heartbeat로 알아채기까지 (두 번째 워커가 다시 실행)": 3 * HEARTBEAT_SECONDS + WORK_SECONDS,
        "3. 같은 멈춤, 연결이 끊기면 작업을 취소하는 워커": 3 * HEARTBEAT_SECONDS + WORK_SECONDS,
    },
)
