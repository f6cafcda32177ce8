"""practice15 — 작업 테스트하기: eager가 숨기는 것

무엇을 배우나: eager 모드는 작업을 호출한 프로세스 안에서 곧바로 실행한다. task.apply() 가 그렇고,
task_always_eager=True 인 앱의 delay() 도 그렇다. 브로커도 워커도 결과 백엔드도 거치지 않는다. 이 셋을 거치는 쪽을
실제 경로라고 부른다. 그래서 실제 경로에서만 일어나는 일이 eager 테스트에는 보이지 않는다. eager에서는 돌려준 값이
JSON으로 바뀌지 않는다. countdown과 재시도 간격을 기다리지 않고, 시간 제한도 걸지 않는다. 결과는 결과 백엔드에 남지
않는다. 이 실습은 같은 작업을 eager로 한 번, 실제 워커로 한 번 불러 나란히 보인다. 예제 테스트는 세 가지다(Celery
없이 함수로, celery.contrib.pytest 의 스레드 워커로, 실제 워커 프로세스로). practice15/examples/ 에 있고, 그대로
복사해 쓸 수 있다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice15.tasks worker --loglevel=info
    터미널 2:  python -m practice15.call_tasks
"""

import time

from celery import Celery

from global_config import RABBITMQ_URL, REDIS_URL

COUNTDOWN_SECONDS = 2  # apply_async(countdown=...) 로 보낸 작업이 실행되기 전에 기다리는 시간
TIME_LIMIT_SECONDS = 1  # slow 작업의 시간 제한(time_limit). 넘으면 워커가 풀 프로세스를 죽인다
SLOW_SECONDS = 2  # slow 작업이 실행되는 시간. 시간 제한보다 길다
RETRY_SECONDS = 1  # flaky 작업이 재시도하기 전에 기다리는 시간
MAX_RETRIES = 2  # flaky 작업이 실패하는 횟수. 그만큼 재시도한 뒤에 성공한다

app = Celery("practice15", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice15",
    # 작업 메시지와 결과는 JSON으로만 주고받는다(Celery의 기본값). eager 모드에서는 돌려준 값이 JSON을 거치지 않는다.
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # eager로 실행한 작업이 예외를 내면 호출한 곳에서 다시 낼지 정한다. 기본값은 False다.
    task_eager_propagates=False,
)


@app.task
def add(x, y):
    return x + y


@app.task
def pair(a, b):
    # 튜플을 돌려준다. JSON에는 튜플이 없어서 실제 경로에서는 리스트로 돌아온다.
    return (a, b)


@app.task
def count_by_id(ids):
    # 정수 키 dict를 돌려준다. JSON 객체의 키는 문자열뿐이라 실제 경로에서는 키가 문자열이 된다.
    return {i: ids.count(i) for i in ids}


@app.task
def unique(words):
    # set을 돌려준다. JSON으로 바꿀 수 없어서 실제 경로에서는 워커가 결과를 저장하지 못한다.
    return set(words)


@app.task(time_limit=TIME_LIMIT_SECONDS)
def slow(seconds=SLOW_SECONDS):
    time.sleep(seconds)
    return "끝"


@app.task(bind=True, max_retries=MAX_RETRIES, default_retry_delay=RETRY_SECONDS)
def flaky(self):
    # MAX_RETRIES 번 실패하고 그다음 실행에서 성공한다. 몇 번째 재시도에서 성공했는지 돌려준다.
    if self.request.retries < MAX_RETRIES:
        raise self.retry(exc=ConnectionError("잠깐 안 됨"))
    return self.request.retries


@app.task
def fail():
    raise ValueError("작업이 실패했다")
