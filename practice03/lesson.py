"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py 와 call_tasks.py 에 있다.
"""

from course import Needs, WorkerSpec
from practice03.tasks import BACKEND, LONG_SECONDS

NEEDS = Needs(
    workers=(WorkerSpec(env={} if BACKEND == "redis" else {"PRACTICE03_BACKEND": BACKEND}),),
    waits={"group의 가장 긴 조각": LONG_SECONDS, "chord의 가장 긴 조각": LONG_SECONDS},
)
