"""practice16 — 웹 앱 뒤의 Celery: FastAPI

무엇을 배우나: 웹 요청을 처리하는 중에 오래 걸리는 일을 하지 않고 작업(task)으로 넘긴다. 엔드포인트는 작업을
보내고 곧바로 202 Accepted와 작업 id로 응답한다. 브라우저는 그 id로 진행 상황을 조회하거나(GET /reports/{id}) SSE로
받는다. 같은 Idempotency-Key로 요청이 두 번 와도 작업은 한 번만 보낸다. 브로커나 Redis가 꺼져 있으면 503과
Retry-After로 곧바로 응답한다. delay() 는 브로커와 네트워크로 주고받는 블로킹 호출이다. async def 엔드포인트 안에서
부르면 그동안 이벤트 루프 전체가 멈춘다. 그래서 작업을 보내는 엔드포인트는 def로 쓴다. FastAPI는 def 엔드포인트를
스레드 풀에서 실행한다. 워커에서는 async def 작업과 워커가 fork하기 전에 만든 데이터베이스 연결을 본다(fork_db.py).

실행 방법 (프로젝트 폴더에서, 터미널 세 개):
    터미널 1:  celery -A practice16.tasks worker --loglevel=info
    터미널 2:  uvicorn practice16.web:app --port 8016
    터미널 3:  python -m practice16.call_tasks
"""

import asyncio
import time

from celery import Celery

from course import Journal
from global_config import RABBITMQ_URL, REDIS_URL

STEP_SECONDS = 0.3  # 보고서 한 쪽을 만드는 시간
# 브로커 연결을 기다리는 상한. 브로커가 답하지 않아도 요청은 이보다 오래 멈추지 않는다.
BROKER_CONNECT_TIMEOUT_SECONDS = 1
PUBLISH_RETRY_SECONDS = 0.2  # 보내기에 실패한 뒤 다시 보내기까지 기다리는 시간
PUBLISH_MAX_RETRIES = 1  # 보내기에 실패하면 다시 보내는 횟수
ASYNC_SLEEP_SECONDS = 0.01  # async def 작업이 await하는 시간

app = Celery("practice16", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice16",
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # 202 Accepted는 "작업을 받아 두었다"는 약속이다. 그러려면 브로커가 메시지를 받았다고 답한 뒤에 202를 돌려줘야
    # 한다. publisher confirms(practice11)를 켜면 delay() 는 브로커의 답을 기다렸다가 돌아온다.
    broker_transport_options={"confirm_publish": True},
    # 요청을 처리하는 중의 delay() 는 빨리 실패해야 한다. 기본값이면 브로커가 답하지 않을 때 4초를 기다린다.
    # 브로커가 연결을 거절해도 세 번 다시 보내며 0.6초쯤 쓴다.
    broker_connection_timeout=BROKER_CONNECT_TIMEOUT_SECONDS,
    task_publish_retry_policy={
        "max_retries": PUBLISH_MAX_RETRIES,
        "interval_start": 0,
        "interval_step": PUBLISH_RETRY_SECONDS,
        "interval_max": PUBLISH_RETRY_SECONDS,
    },
    # 워커가 작업을 시작하면 STARTED로 적는다. 그래야 "실행 중"과 "아직 큐에 있음(PENDING)"이 구별된다.
    task_track_started=True,
    # 풀 프로세스 둘. fork_db.py 의 작업은 두 풀 프로세스가 같은 연결을 물려받았는지 본다. 기본값(CPU 수)이면 CPU가
    # 하나인 기계에서는 풀 프로세스도 하나다.
    worker_concurrency=2,
    # 워커는 fork_db.py 의 작업도 불러온다. 웹 앱은 이 모듈만 import하므로 fork_db.py 의 연결을 만들지 않는다.
    include=["practice16.fork_db"],
)

# 작업이 실행될 때마다 남기는 실행 기록(Redis 목록 practice16:journal:<run>). 몇 번 실행되었는지 센다.
journal = Journal("practice16")


@app.task(bind=True)
def make_report(self, pages, run=None, fail_at=None):
    # 쪽을 하나 만들 때마다 진행 상황을 결과 백엔드에 적는다. 상태는 PROGRESS이고, meta에는 만든 쪽 수와 전체 쪽
    # 수를 적는다.
    # fail_at을 주면 그 번호의 쪽에서 실패한다. 실패한 보고서를 웹 앱이 어떻게 보여 주는지 본다.
    if run:
        journal.write(run, "시작", task_id=self.request.id)
    for done in range(1, pages + 1):
        time.sleep(STEP_SECONDS)
        if done == fail_at:
            raise ValueError(f"{done}쪽을 만들지 못했습니다")
        self.update_state(state="PROGRESS", meta={"done": done, "total": pages})
    if run:
        journal.write(run, "끝", task_id=self.request.id)
    return {"pages": pages, "finished_at": time.time()}


async def fetch_page(page):
    # 비동기 라이브러리(httpx.AsyncClient 등)로 한 쪽을 가져오는 코루틴이라고 하자.
    await asyncio.sleep(ASYNC_SLEEP_SECONDS)
    return {"page": page}


@app.task
async def fetch_async(page):
    # async def 작업. Celery 5.7의 워커는 이 함수를 부르기만 하고 await하지 않는다.
    return await fetch_page(page)


@app.task
def fetch_with_asyncio_run(page):
    # 고치는 법. 동기 함수(def)로 쓴 작업 안에서 asyncio.run() 으로 코루틴을 끝까지 실행한다. 부를 때마다
    # 이벤트 루프를 새로 만들고 닫는다.
    return asyncio.run(fetch_page(page))
