"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py 와 call_tasks.py 에 있다.
"""

from course import Needs
from practice04.tasks import BACKOFF_MAX_SECONDS, MAX_RETRIES

NEEDS = Needs(
    waits={"auto_retrying 의 백오프 간격": float(sum(min(2**n, BACKOFF_MAX_SECONDS) for n in range(MAX_RETRIES)))},
)
