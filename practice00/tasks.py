"""practice00 — 작업 호출과 AsyncResult

무엇을 배우나: 작업(task)을 브로커(RabbitMQ)에 보내는 방법은 delay와 apply_async 두 가지다. 결과를 담는
AsyncResult 객체에서 state, ready, successful, failed, traceback, get을 읽는다. 결과 백엔드(PostgreSQL)에
결과가 어떻게 남는지도 본다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice00.tasks worker --loglevel=info
    터미널 2:  python -m practice00.call_tasks
"""

import time

from celery import Celery

from global_config import POSTGRES_URL, RABBITMQ_URL

# slow_add 가 일하는 척하는 시간(초). 이 시간 동안 ready() 는 False 다.
WORK_SECONDS = 1.0
# call_tasks 가 apply_async(countdown=...) 로 미루는 시간(초).
COUNTDOWN_SECONDS = 2

# call_tasks 가 없는 id를 get() 으로 기다려 볼 시간(초).
UNKNOWN_ID_TIMEOUT_SECONDS = 1


app = Celery("practice00", broker=RABBITMQ_URL, backend=POSTGRES_URL)
app.conf.update(
    # 메시지와 결과는 JSON으로만 주고받는다. pickle은 받는 쪽에서 임의의 코드를 실행할 수 있다.
    # 세 줄 모두 Celery의 기본값이다. 무엇을 받는지 보이게 여기에 한 번 적는다. 다른 실습은 기본값을 그대로 쓴다.
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # 실습마다 자기 큐를 쓴다. 다른 실습의 워커가 켜져 있어도 이 실습의 작업을 가져가지 않는다.
    task_default_queue="practice00",
)


@app.task
def add(x, y):
    return x + y


@app.task
def slow_add(x, y, seconds=WORK_SECONDS):
    # 오래 걸리는 작업을 흉내 낸다. 호출하는 쪽은 그동안 기다리지 않고 다른 일을 할 수 있다.
    time.sleep(seconds)
    return x + y


@app.task
def divide(x, y):
    # y=0 이면 ZeroDivisionError가 난다. 워커는 예외와 traceback을 결과 백엔드에 FAILURE로 저장한다.
    return x / y
