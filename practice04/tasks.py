"""practice04 — 재시도: self.retry() 와 autoretry_for

무엇을 배우나: 일시적으로 실패하는 작업을 다시 시도하는 두 가지 방법을 배운다. 네트워크가 끊기거나 외부 API가
잠깐 바쁠 때가 그런 실패다. 첫째 방법에서는 bind=True 로 작업 자신(self)을 받고 self.request.retries 를 본다.
이 값은 0부터 센다. 실패하면 raise self.retry(exc=..., countdown=...) 로 같은 작업을 같은 작업 id로 다시 보낸다.
둘째 방법은 autoretry_for 와 retry_backoff 로 같은 일을 선언만으로 한다. 이 선언에는 함정이 있다.
backoff도 countdown도 없으면 다음 시도까지 default_retry_delay(180초)를 기다린다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice04.tasks worker --loglevel=info
    터미널 2:  python -m practice04.call_tasks
"""

from celery import Celery

from course import Journal
from global_config import RABBITMQ_URL, REDIS_URL

MAX_RETRIES = 3  # 처음 한 번 + 재시도 3번 = 최대 4번 실행
RETRY_COUNTDOWN_SECONDS = 1  # self.retry(countdown=...): 다음 시도까지 기다릴 초
FAILURES_BEFORE_SUCCESS = 2  # flaky는 두 번 실패하고 세 번째 시도에 성공한다
BACKOFF_MAX_SECONDS = 2  # retry_backoff_max: 지수 백오프(1, 2, 4 …초)의 상한


app = Celery("practice04", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice04",
)

# 시도마다 self.request.retries 와 실행한 워커(self.request.hostname)를 실행 기록(Redis 목록
# practice04:journal:<run_id>)에 적는다. 적은 시각은 기록이 함께 남긴다(entry.at). 호출하는 쪽은 이 기록으로 시도
# 횟수와 간격을 보고, 다음 시도를 쥐고 있는 워커에게만 물어볼 수 있다.
journal = Journal("practice04")


@app.task(bind=True, max_retries=MAX_RETRIES)
def flaky(self, run_id, failures=FAILURES_BEFORE_SUCCESS):
    journal.write(run_id, "시도", retries=self.request.retries, worker=self.request.hostname)
    try:
        if self.request.retries < failures:
            raise ConnectionError(f"일시적 오류 (retries={self.request.retries})")
        return f"성공: retries={self.request.retries}"
    except ConnectionError as exc:
        # retry() 는 같은 작업을 같은 작업 id로 다시 보낸 뒤 그 자리에서 Retry 예외를 던진다. 그래서 이번 실행은
        # 여기서 끝나고 상태는 RETRY가 된다. 앞의 raise는 여기서 끝난다는 것을 읽는 사람에게 보여 주는 관용구다.
        raise self.retry(exc=exc, countdown=RETRY_COUNTDOWN_SECONDS) from exc


@app.task(bind=True, max_retries=MAX_RETRIES)
def always_fails(self, run_id):
    journal.write(run_id, "시도", retries=self.request.retries, worker=self.request.hostname)
    try:
        raise ConnectionError("외부 서비스가 응답하지 않음")
    except ConnectionError as exc:
        # exc= 를 주었으므로, 재시도를 다 쓰면 호출하는 쪽은 이 원래 예외(ConnectionError)를 받는다.
        raise self.retry(exc=exc, countdown=RETRY_COUNTDOWN_SECONDS) from exc


@app.task(bind=True, max_retries=MAX_RETRIES)
def always_fails_without_exc(self, run_id):
    journal.write(run_id, "시도", retries=self.request.retries, worker=self.request.hostname)
    try:
        raise ConnectionError("외부 서비스가 응답하지 않음")
    except ConnectionError:
        # exc= 가 없으면, 재시도를 다 쓴 뒤 호출하는 쪽은 MaxRetriesExceededError를 받는다.
        raise self.retry(countdown=RETRY_COUNTDOWN_SECONDS) from None


# raise를 빼고 self.retry() 만 불러도 이번 실행은 그 자리에서 끝난다. retry() 가 Retry 예외를 스스로 던지기
# 때문이다. 그래서 첫 시도는 return에 닿지 않고, 끝까지 가는 것은 재시도(retries=1)다.
@app.task(bind=True, max_retries=1)
def retry_without_raise(self, run_id):
    journal.write(run_id, "시도", retries=self.request.retries, worker=self.request.hostname)
    if self.request.retries == 0:
        self.retry(countdown=RETRY_COUNTDOWN_SECONDS)
    return f"끝까지 실행됨: retries={self.request.retries}"


# 선언으로 하는 재시도. ConnectionError가 나면 Celery가 대신 self.retry(exc=...) 를 부른다.
# 다음 시도까지 1, 2, 4 …초(retry_backoff=True)를 기다리되 BACKOFF_MAX_SECONDS 초를 넘지 않는다.
# retry_jitter 의 기본값은 True이고, 그러면 0초와 그 값 사이에서 무작위로 고른다. 여기서는 간격을 눈으로 보려고 끈다.
@app.task(
    bind=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    retry_backoff_max=BACKOFF_MAX_SECONDS,
    retry_jitter=False,
    max_retries=MAX_RETRIES,
)
def auto_retrying(self, run_id):
    journal.write(run_id, "시도", retries=self.request.retries, worker=self.request.hostname)
    raise ConnectionError("외부 서비스가 응답하지 않음")


# 같은 선언에서 retry_jitter 만 기본값(True)으로 두었다. 간격은 0초와 1, 2, 2초 사이에서 무작위로 정해진다.
# 여러 클라이언트가 한꺼번에 실패했을 때 재시도가 같은 순간에 몰리지 않게 한다.
@app.task(
    bind=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    retry_backoff_max=BACKOFF_MAX_SECONDS,
    max_retries=MAX_RETRIES,
)
def auto_retrying_with_jitter(self, run_id):
    journal.write(run_id, "시도", retries=self.request.retries, worker=self.request.hostname)
    raise ConnectionError("외부 서비스가 응답하지 않음")


# 함정이다. autoretry_for 만 주고 retry_backoff 도 countdown도 주지 않으면,
# 다음 시도까지 default_retry_delay(180초)를 기다린다.
@app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=1)
def auto_retrying_slowly(self, run_id):
    journal.write(run_id, "시도", retries=self.request.retries, worker=self.request.hostname)
    raise ConnectionError("외부 서비스가 응답하지 않음")


# 헬퍼. 호출하는 쪽(call_tasks, 테스트)이 쓴다.
def send(task, *args, **options):
    """새 run_id 를 첫 인자로 붙여 보내고 (AsyncResult, run_id) 를 돌려준다.

    시도 기록은 journal.read(run_id) 로 읽는다.
    """
    run_id = Journal.new_run()
    return task.apply_async((run_id, *args), **options), run_id
