"""practice16: 보고서 작업을 보내고 진행 상황을 알려 주는 웹 앱(FastAPI).

엔드포인트는 보고서를 직접 만들지 않는다. 작업을 보내고 곧바로 202 Accepted로 응답한다. 보고서는 워커가 만든다.

    POST   /reports              작업을 보낸다 → 202, 작업 id, Location: /reports/{id}
    GET    /reports/{id}         상태, 진행 상황, 결과나 오류
    GET    /reports/{id}/events  진행 상황을 SSE(text/event-stream)로 보낸다. 작업이 끝나면 스트림도 끝난다
    GET    /reports/{id}/wait    결과를 get() 으로 기다린다. 요청 하나가 그동안 스레드 풀의 스레드 하나를 붙잡는다
    DELETE /reports/{id}         작업을 취소한다(revoke) → 202
    POST   /reports/blocking     async def 안에서 delay() 를 부르는 잘못된 예. 보내는 동안 이벤트 루프가 멈춘다
    GET    /health               곧바로 200. 준비 확인과 응답 시간 측정에 쓴다
    GET    /                     보고서를 요청하고 진행 막대를 보여 주는 페이지

실행 방법 (프로젝트 폴더에서):
    uvicorn practice16.web:app --port 8016
"""

import asyncio
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import redis
from celery import states
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from kombu.exceptions import OperationalError as BrokerUnavailable
from pydantic import BaseModel, Field

from global_config import REDIS_URL
from practice16.tasks import app as celery_app
from practice16.tasks import make_report

RETRY_AFTER_SECONDS = 5  # 503과 함께 보내는 Retry-After. 이만큼 뒤에 다시 시도하라는 뜻이다
STILL_SENDING_RETRY_SECONDS = 1  # 409(같은 키의 요청이 아직 보내는 중)와 함께 보내는 Retry-After
SENDING, SENT = "sending", "sent"  # 보고서 키의 값: 작업을 보내는 중, 브로커가 받았다고 답했음
REDIS_TIMEOUT_SECONDS = 1  # 웹 앱이 Redis의 답을 기다리는 상한
REMEMBER_SECONDS = 24 * 3600  # 보낸 작업 id와 Idempotency-Key를 기억하는 시간. Redis 결과의 기본 수명과 같다
EVENTS_POLL_SECONDS = 0.2  # SSE 스트림이 결과 백엔드를 다시 읽는 간격
EVENTS_MAX_SECONDS = 120  # SSE 스트림 하나를 열어 두는 상한. 작업이 그때까지 끝나지 않으면 timeout 이벤트로 끝낸다
WAIT_TIMEOUT_SECONDS = 30  # /wait 이 get() 으로 기다리는 상한(쿼리 매개변수 timeout의 기본값)
MAX_PAGES = 100

app = FastAPI(title="practice16 reports")
# 보낸 작업 id와 Idempotency-Key를 적어 두는 Redis. 결과 백엔드와 같은 서버다.
store = redis.Redis.from_url(
    REDIS_URL, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS, decode_responses=True
)
PAGE = (Path(__file__).parent / "page.html").read_text()
READY_STATES = states.READY_STATES  # SUCCESS, FAILURE, REVOKED


class ReportRequest(BaseModel):
    pages: int = Field(default=3, ge=1, le=MAX_PAGES)
    run: str | None = None  # 실행 기록의 이름. 작업이 몇 번 실행되었는지 세고 싶을 때 준다
    fail_at: int | None = None  # 이 번호의 쪽에서 실패하게 한다. 실패한 보고서를 보려고 둔다


def report_key(report_id):
    return f"practice16:report:{report_id}"


def idempotency_key(key):
    return f"practice16:idempotency:{key}"


class StillSending(Exception):
    """같은 Idempotency-Key의 앞선 요청이 아직 작업을 보내고 있다."""


def unavailable(message):
    # 브로커나 Redis가 답하지 않을 때 쓴다. 500과 traceback 대신 503과 Retry-After를 돌려준다.
    return JSONResponse(
        {"detail": f"{message} 잠시 뒤에 다시 시도하세요."},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@app.exception_handler(BrokerUnavailable)
def broker_unavailable(request: Request, exc: BrokerUnavailable):
    return unavailable("브로커에 연결할 수 없습니다.")


@app.exception_handler(StillSending)
def still_sending(request: Request, exc: StillSending):
    # 같은 키로 먼저 온 요청이 아직 끝나지 않았다. 그 요청이 202를 받을지 503을 받을지 아직 모른다.
    return JSONResponse(
        {"detail": "같은 Idempotency-Key의 요청을 아직 처리하고 있습니다. 잠시 뒤에 다시 보내세요."},
        status_code=409,
        headers={"Retry-After": str(STILL_SENDING_RETRY_SECONDS)},
    )


@app.exception_handler(redis.exceptions.ConnectionError)
@app.exception_handler(redis.exceptions.TimeoutError)
def redis_unavailable(request: Request, exc: Exception):
    return unavailable("Redis에 연결할 수 없습니다.")


def accepted(response, report_id):
    response.headers["Location"] = f"/reports/{report_id}"
    return {"id": report_id}


def send_report(body, key=None):
    """작업 id를 정해 기억해 두고 작업을 보낸다. 보내지 못하면 기억한 것을 지우고 예외를 그대로 낸다.

    보고서 키의 값은 보내는 동안 SENDING이고, 브로커가 받았다고 답한 뒤에 SENT다. key(Idempotency-Key)를 주면 SET
    NX로 그 키에 작업 id를 적는다. 이 키로 처음 온 요청만 적을 수 있다. 같은 키로 다시 온 요청에는 작업을 보내지
    않는다. 먼저 온 요청이 보내기를 마쳤으면(SENT) 그 id를 돌려주고, 아직 보내는 중이면 StillSending을 낸다(409).
    그래서 202는 브로커가 받은 작업에만 돌려준다.
    """
    report_id = str(uuid.uuid4())
    if key is not None and not store.set(key, report_id, nx=True, ex=REMEMBER_SECONDS):
        earlier = store.get(key)
        if earlier is None or store.get(report_key(earlier)) != SENT:
            raise StillSending()
        return earlier
    store.set(report_key(report_id), SENDING, ex=REMEMBER_SECONDS)
    try:
        make_report.apply_async((body.pages, body.run, body.fail_at), task_id=report_id)
    except Exception:
        # 키도 지운다. 그래야 같은 키로 다시 시도한 요청이 작업을 보낼 수 있다.
        store.delete(report_key(report_id), *([key] if key else []))
        raise
    store.set(report_key(report_id), SENT, ex=REMEMBER_SECONDS)
    return report_id


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


@app.post("/reports", status_code=202)
def create_report(body: ReportRequest, response: Response, key: IdempotencyKey = None):
    # def 엔드포인트다. FastAPI는 스레드 풀에서 실행하므로, delay() 가 브로커의 답을 기다리는 동안에도 이벤트 루프는
    # 다른 요청을 받는다.
    return accepted(response, send_report(body, idempotency_key(key) if key else None))


@app.post("/reports/blocking", status_code=202)
async def create_report_blocking(body: ReportRequest, response: Response):
    # 잘못된 예. async def 엔드포인트는 이벤트 루프에서 실행된다. delay() 는 브로커의 답을 기다리는 블로킹 호출이라,
    # 그동안 이 프로세스는 다른 요청(/health 까지)에 응답하지 못한다.
    return accepted(response, send_report(body))


def known_report(report_id: str) -> str:
    # Celery는 모르는 id에도 PENDING이라고 답한다. 그래서 웹 앱이 보낸 id를 Redis에 직접 적어 두고, 적혀 있지 않은
    # id는 404로 거절한다.
    if not store.exists(report_key(report_id)):
        raise HTTPException(404, f"보낸 적이 없는 보고서입니다: {report_id}")
    return report_id


KnownReport = Annotated[str, Depends(known_report)]


def status_of(report_id):
    """결과 백엔드에 적힌 상태를 응답으로 돌려줄 dict로 바꾼다. 오류에는 예외의 종류와 메시지만 담는다."""
    meta = celery_app.backend.get_task_meta(report_id)
    state, info = meta["status"], meta["result"]
    status = {"id": report_id, "state": state}
    if state == "PROGRESS":
        status["progress"] = info
    elif state == states.SUCCESS:
        status["result"] = info
    elif state in states.EXCEPTION_STATES:
        # traceback(meta["traceback"])은 보내지 않는다. 서버의 파일 경로와 코드가 드러나기 때문이다.
        status["error"] = {"type": type(info).__name__, "message": str(info)}
    return status


@app.get("/reports/{report_id}")
def report_status(report_id: KnownReport):
    return status_of(report_id)


@app.get("/reports/{report_id}/wait")
def report_wait(report_id: KnownReport, timeout: float = WAIT_TIMEOUT_SECONDS):
    # 요청을 처리하며 get() 으로 기다리는 잘못된 예. 작업이 끝날 때까지 이 요청이 스레드 풀의 스레드 하나를 붙잡는다.
    # 한 번에 일하는 스레드는 40개까지다(anyio의 기본값). 모두 붙잡히면 def 엔드포인트는 하나도 실행되지 못한다.
    result = AsyncResult(report_id, app=celery_app)
    with suppress(CeleryTimeoutError):  # 시간이 다 되면 그때의 상태를 돌려준다
        result.get(timeout=timeout, propagate=False)
    return status_of(report_id)


@app.get("/reports/{report_id}/events", response_class=EventSourceResponse)
async def report_events(report_id: KnownReport):
    # async def 제너레이터다. 결과 백엔드를 읽는 블로킹 호출은 run_in_threadpool 로 스레드 풀에 넘기고, 기다리는
    # 동안은 asyncio.sleep 으로 다른 코루틴에 차례를 넘긴다. 스트림이 열려 있는 동안 스레드를 붙잡지 않는다.
    deadline = time.monotonic() + EVENTS_MAX_SECONDS
    last = None
    while time.monotonic() < deadline:
        status = await run_in_threadpool(status_of, report_id)
        if status["state"] in READY_STATES:
            yield ServerSentEvent(event="done", data=status)
            return
        if status != last:
            yield ServerSentEvent(event="progress", data=status)
            last = status
        await asyncio.sleep(EVENTS_POLL_SECONDS)
    yield ServerSentEvent(event="timeout", data={"id": report_id, "after_seconds": EVENTS_MAX_SECONDS})


@app.delete("/reports/{report_id}", status_code=202)
def cancel_report(report_id: KnownReport):
    # revoke는 모든 워커에 "이 id는 실행하지 말라"고 알린다. 워커가 받아 두고(prefetch) 아직 실행하지 않은 작업은
    # 곧바로 REVOKED로 적히고, 차례가 오면 버려진다. terminate=True 면 실행 중인 작업의 풀 프로세스에도 SIGTERM을
    # 보내 끊는다. 결과는 REVOKED(TaskRevokedError: terminated)다.
    celery_app.control.revoke(report_id, terminate=True)
    return {"id": report_id, "revoked": True}


@app.get("/health")
async def health():
    # 이벤트 루프에서 곧바로 응답한다. 이 응답이 늦으면 이벤트 루프가 다른 일에 막혀 있다는 뜻이다.
    return {"ok": True}


@app.get("/", response_class=HTMLResponse)
async def page():
    return PAGE
