"""이 실습을 실행하는 데 필요한 것(course.Needs). 띄울 프로세스와 일부러 기다리는 시간을 적는다.

실행기(python -m playground), 워커가 없을 때의 안내, 테스트, 벤치마크가 이 NEEDS를 읽는다.
Celery를 배우는 데 읽을 필요는 없다. 실습의 내용은 tasks.py, web.py, call_tasks.py 에 있다.
이 실습은 워커와 함께 웹 서버(uvicorn)도 띄운다. call_tasks 는 작업을 직접 부르지 않고 웹 앱에 HTTP 요청을 보낸다.
"""

from course import Needs, WebSpec
from practice16.tasks import STEP_SECONDS

WEB_PORT = 8016

NEEDS = Needs(
    web=WebSpec(app="practice16.web:app", port=WEB_PORT),
    waits={
        "1. 3쪽 보고서": 3 * STEP_SECONDS,
    },
)
