"""practice16 README: 워커와 실제 uvicorn 프로세스 앞에서 웹 앱이 하는 일을 HTTP(httpx)로 확인한다.

202와 Location, 진행 상황, SSE 스트림, Idempotency-Key, 모르는 id, 실패와 취소(revoke), 브로커나 Redis가 꺼졌을 때의
503, async def 엔드포인트 안의 delay() 가 이벤트 루프를 막는 것, 요청 안의 get() 이 스레드 풀을 붙잡는 것, async def
작업, fork 전에 만든 데이터베이스 연결을 본다.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx
import pytest
import redis
from celery import Celery
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerUnavailable

import global_config
from course import Journal, needs_of, never_within, wait_until
from playground import PROJECT_ROOT
from playground.lessons import CLOSED_PORT_URLS
from playground.slow_proxy import DELAY_SECONDS, SlowProxy
from playground.workers import WebServer, Worker, free_port, running
from practice16 import web as web_app
from practice16.tasks import (
    BROKER_CONNECT_TIMEOUT_SECONDS,
    PUBLISH_MAX_RETRIES,
    app,
    fetch_async,
    fetch_with_asyncio_run,
    journal,
)
from practice16.web import REMEMBER_SECONDS, RETRY_AFTER_SECONDS, STILL_SENDING_RETRY_SECONDS
from tests import WAIT_SECONDS
from tests.readme import code_blocks, lesson_readmes, readme

LESSON = "practice16"
# 이 모듈의 테스트들은 워커와 웹 서버(lesson_processes)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = [pytest.mark.xdist_group(LESSON), pytest.mark.early]
WEB = needs_of(LESSON).web
SETTLE_SECONDS = 1  # 일어나지 않아야 할 일(두 번째 실행, 취소된 보고서의 시작)을 지켜보는 시간
# 브로커나 Redis가 꺼졌을 때 503이 오기까지의 상한. 연결 제한 시간(1초)을 다시 보내는 횟수만큼 기다리고도 남는다.
UNAVAILABLE_BOUND_SECONDS = (PUBLISH_MAX_RETRIES + 1) * BROKER_CONNECT_TIMEOUT_SECONDS + 1
HEAD_START_SECONDS = 0.05  # 느린 POST를 보내고 /health 를 보내기까지
TRIALS = 3  # 이벤트 루프가 막히는지 잴 때 엔드포인트마다 몇 번 재는가
THREADPOOL_TOKENS = 40  # anyio가 스레드 풀에 두는 스레드 수(기본값)
HOLD_WAIT_SECONDS = 2  # /wait 요청들이 get() 으로 기다리는 시간(timeout)


@pytest.fixture(scope="module")
def web(lesson_processes) -> WebServer:
    """NEEDS의 웹 서버(이 테스트 프로세스의 포트)."""
    return next(process for process in lesson_processes if isinstance(process, WebServer))


@pytest.fixture
def client(web) -> httpx.Client:
    with httpx.Client(base_url=web.url, timeout=WAIT_SECONDS) as session:
        yield session


@contextmanager
def _silent_broker(virtual_host: str = "") -> Iterator[str]:
    """연결은 받아 두지만(listen) 아무것도 답하지 않는 브로커의 주소. with 블록 안에서만 듣는다."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}/{virtual_host}"


def _status(client, report_id):
    answer = client.get(f"/reports/{report_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _until_state(client, report_id, *states):
    return wait_until(lambda: (s := _status(client, report_id))["state"] in states and s, f"{report_id}: {states}")


def _post(client, **body):
    answer = client.post("/reports", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


# --- 202, Location, 진행 상황 ------------------------------------------------------------------------------------


def test_post_answers_202_with_the_id_and_a_location_that_reaches_success_through_progress(client):
    answer = client.post("/reports", json={"pages": 3})
    assert answer.status_code == 202
    report_id = answer.json()["id"]
    assert answer.headers["Location"] == f"/reports/{report_id}"
    seen = []

    def finished():
        status = client.get(answer.headers["Location"]).json()
        seen.append(status)
        return status["state"] == "SUCCESS" and status

    done = wait_until(finished, "보고서가 끝나기")
    assert done["result"]["pages"] == 3
    progress = [status["progress"] for status in seen if status["state"] == "PROGRESS"]
    assert progress and all(p["total"] == 3 and 1 <= p["done"] <= 3 for p in progress), seen
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
    assert {status["state"] for status in seen} <= {"PENDING", "STARTED", "PROGRESS", "SUCCESS"}


def test_a_failed_report_shows_the_exception_type_and_message_but_no_traceback(client):
    report_id = _post(client, pages=3, fail_at=2)
    failed = _until_state(client, report_id, "FAILURE")
    assert failed["error"] == {"type": "ValueError", "message": "2쪽을 만들지 못했습니다"}
    assert set(failed) == {"id", "state", "error"}
    assert "Traceback" not in json.dumps(failed)
    # 결과 백엔드에는 traceback이 있다. 웹 앱이 보내지 않을 뿐이다.
    assert "Traceback" in app.backend.get_task_meta(report_id)["traceback"]


def test_an_unknown_id_is_pending_for_celery_and_404_for_the_web_app(client):
    unknown = str(uuid.uuid4())
    assert app.AsyncResult(unknown).state == "PENDING"  # Celery는 모르는 id에도 PENDING이라고 답한다
    assert client.get(f"/reports/{unknown}").status_code == 404
    assert client.get(f"/reports/{unknown}/events").status_code == 404
    assert client.delete(f"/reports/{unknown}").status_code == 404


def test_health_answers_200(client):
    answer = client.get("/health")
    assert (answer.status_code, answer.json()) == (200, {"ok": True})


# --- Idempotency-Key -----------------------------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_same_id_and_the_report_runs_once(client, lesson_processes):
    run, key = Journal.new_run(), str(uuid.uuid4())
    answers = [client.post("/reports", json={"pages": 1, "run": run}, headers={"Idempotency-Key": key}) for _ in "ab"]
    assert [a.status_code for a in answers] == [202, 202]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1 and {a.headers["Location"] for a in answers} == {f"/reports/{ids.pop()}"}
    journal.wait_for(run, 1, what="끝")
    never_within(SETTLE_SECONDS, lambda: len(journal.whats(run)) > 2, "같은 키의 보고서가 한 번 더 실행됨")
    assert journal.whats(run) == ["시작", "끝"]
    task_id = journal.read(run)[0]["task_id"]
    worker_log = "".join(process.log for process in lesson_processes if not isinstance(process, WebServer))
    assert worker_log.count(f"make_report[{task_id}] received") == 1  # 메시지는 하나만 갔다
    # 다른 키(또는 키 없음)는 새 보고서다.
    other = client.post("/reports", json={"pages": 1}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert other.json()["id"] != task_id


def _worker_logs(lesson_processes, *more):
    return "".join(process.log for process in (*lesson_processes, *more) if not isinstance(process, WebServer))


def test_requests_that_arrive_together_with_one_key_send_one_report(client, web, lesson_processes):
    key, together = str(uuid.uuid4()), 8

    async def post_all():
        async with httpx.AsyncClient(base_url=web.url, timeout=WAIT_SECONDS) as many:
            return await asyncio.gather(
                *(many.post("/reports", json={"pages": 1}, headers={"Idempotency-Key": key}) for _ in range(together))
            )

    answers = asyncio.run(post_all())
    # 키를 처음 적은 요청만 작업을 보낸다. 그 요청이 보내기를 마친 뒤에 온 요청은 같은 id(202)를, 아직 보내는 중에
    # 온 요청은 409를 받는다.
    assert {a.status_code for a in answers} <= {202, 409}, [a.status_code for a in answers]
    assert all(a.headers["Retry-After"] == str(STILL_SENDING_RETRY_SECONDS) for a in answers if a.status_code == 409)
    (report_id,) = {a.json()["id"] for a in answers if a.status_code == 202}
    _until_state(client, report_id, "SUCCESS")
    received = f"make_report[{report_id}] received"
    never_within(SETTLE_SECONDS, lambda: _worker_logs(lesson_processes).count(received) > 1, "두 번 받음")
    assert _worker_logs(lesson_processes).count(received) == 1


def test_a_second_request_with_the_key_of_one_still_sending_gets_409_and_never_a_202_for_an_unsent_report():
    # 연결은 받지만 답하지 않는 브로커: 첫 요청은 broker_connection_timeout 동안 보내다가 503을 받는다.
    key = str(uuid.uuid4())
    with _silent_broker("/") as silent:
        env = {"RABBITMQ_URL": silent}
        with (
            running(WebServer(LESSON, WEB, port=free_port(), env=env)) as (web,),
            httpx.Client(base_url=web.url, timeout=WAIT_SECONDS) as other,
        ):
            first = {}
            sending = threading.Thread(
                target=lambda: first.update(
                    answer=other.post("/reports", json={"pages": 1}, headers={"Idempotency-Key": key})
                )
            )
            sending.start()
            wait_until(lambda: web_app.store.exists(web_app.idempotency_key(key)), "첫 요청이 키를 적기")
            second = other.post("/reports", json={"pages": 1}, headers={"Idempotency-Key": key})
            sending.join()
    assert second.status_code == 409, second.text
    assert second.headers["Retry-After"] == str(STILL_SENDING_RETRY_SECONDS)
    assert first["answer"].status_code == 503
    assert not web_app.store.exists(web_app.idempotency_key(key))  # 보내지 못했으니 키를 지웠다


def test_a_key_whose_send_failed_is_forgotten_so_that_the_retry_sends(client):
    key = str(uuid.uuid4())
    down = {"RABBITMQ_URL": CLOSED_PORT_URLS["RABBITMQ_URL"]}
    with running(WebServer(LESSON, WEB, port=free_port(), env=down)) as (web,), httpx.Client(base_url=web.url) as other:
        failed = other.post("/reports", json={"pages": 1}, headers={"Idempotency-Key": key})
    assert failed.status_code == 503
    assert not web_app.store.exists(web_app.idempotency_key(key))
    retried = client.post("/reports", json={"pages": 1}, headers={"Idempotency-Key": key})
    assert retried.status_code == 202
    _until_state(client, retried.json()["id"], "SUCCESS")


# --- DELETE: revoke(terminate=True) -----------------------------------------------------------------------------


def test_delete_terminates_a_running_report(client, lesson_processes):
    run = Journal.new_run()
    report_id = _post(client, pages=20, run=run)
    _until_state(client, report_id, "PROGRESS")
    answer = client.delete(f"/reports/{report_id}")
    assert (answer.status_code, answer.json()) == (202, {"id": report_id, "revoked": True})
    revoked = _until_state(client, report_id, "REVOKED")
    assert revoked["error"] == {"type": "TaskRevokedError", "message": "terminated"}
    assert journal.whats(run) == ["시작"]  # 끝나지 못했다
    worker = next(process for process in lesson_processes if not isinstance(process, WebServer))
    worker.wait_for_log(rf"Terminating {report_id} \(15\)", WAIT_SECONDS)  # SIGTERM


def test_delete_revokes_a_queued_report_which_then_never_starts(client, lesson_processes):
    # 풀 프로세스 둘(테스트의 워커는 --concurrency=2)을 긴 보고서로 채우고, 세 번째 보고서를 취소한다.
    runs = [Journal.new_run() for _ in range(3)]
    busy = [_post(client, pages=20, run=run) for run in runs[:2]]
    for report_id in busy:
        _until_state(client, report_id, "PROGRESS")
    queued = _post(client, pages=1, run=runs[2])
    assert _status(client, queued)["state"] == "PENDING"
    assert client.delete(f"/reports/{queued}").status_code == 202
    _until_state(client, queued, "REVOKED")  # 워커가 받아 둔(prefetch) 메시지라 곧바로 REVOKED로 적힌다
    for report_id in busy:
        client.delete(f"/reports/{report_id}")
        _until_state(client, report_id, "REVOKED")
    worker = next(process for process in lesson_processes if not isinstance(process, WebServer))
    worker.wait_for_log(rf"Discarding revoked task: practice16\.tasks\.make_report\[{queued}\]", WAIT_SECONDS)
    never_within(SETTLE_SECONDS, lambda: journal.whats(runs[2]), "취소한 보고서가 시작함")


# --- SSE ------------------------------------------------------------------------------------------------------------


def _events(client, report_id):
    """SSE 스트림을 끝까지 읽어 (event, data) 목록과 Content-Type을 돌려준다."""
    found, event = [], None
    with client.stream("GET", f"/reports/{report_id}/events") as stream:
        content_type = stream.headers["content-type"]
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((event, json.loads(line.removeprefix("data: "))))
    return found, content_type


def test_the_event_stream_sends_progress_until_the_report_is_done_and_then_ends(client):
    pages = 4
    report_id = _post(client, pages=pages)
    events, content_type = _events(client, report_id)
    assert content_type == "text/event-stream; charset=utf-8"
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"progress"}, names
    assert events[-1][1]["state"] == "SUCCESS" and events[-1][1]["result"]["pages"] == pages
    done = [data["progress"]["done"] for name, data in events if data["state"] == "PROGRESS"]
    # 결과 백엔드를 EVENTS_POLL_SECONDS(0.2초)마다 읽고 바뀐 것만 보낸다. 한 쪽에 0.3초가 걸려 거의 모든 쪽이 보인다.
    assert done == sorted(set(done)) and len(done) >= 2, events
    assert len(events) == len({json.dumps(data) for _, data in events})  # 같은 상태를 두 번 보내지 않았다


def test_the_event_stream_of_a_failed_report_ends_with_its_error(client):
    report_id = _post(client, pages=2, fail_at=1)
    events, _ = _events(client, report_id)
    assert events[-1] == ("done", {"id": report_id, "state": "FAILURE", "error": {
        "type": "ValueError", "message": "1쪽을 만들지 못했습니다"}})  # fmt: skip


def test_the_page_is_self_contained_and_has_the_elements_a_browser_reads(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for element in ('id="progress"', 'id="status"', 'id="start"', 'id="pages"', 'id="report-id"'):
        assert element in html, element
    assert "new EventSource(`/reports/${id}/events`)" in html and '"Idempotency-Key": key' in html
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)  # 밖의 자원(CDN)을 불러오지 않는다


# --- 브로커나 Redis가 꺼졌을 때 -------------------------------------------------------------------------------------


def _timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def _assert_503(answer, seconds, what):
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert what in answer.json()["detail"]
    assert seconds < UNAVAILABLE_BOUND_SECONDS, seconds


def test_with_the_broker_down_post_answers_503_with_retry_after_at_once_and_status_still_answers(client):
    known = _post(client, pages=1)
    _until_state(client, known, "SUCCESS")
    down = {"RABBITMQ_URL": CLOSED_PORT_URLS["RABBITMQ_URL"]}
    with running(WebServer(LESSON, WEB, port=free_port(), env=down)) as (web,), httpx.Client(base_url=web.url) as other:
        for path in ("/reports", "/reports/blocking"):
            _assert_503(*_timed(lambda path=path: other.post(path, json={"pages": 1})), "브로커")
        _assert_503(*_timed(lambda: other.delete(f"/reports/{known}")), "브로커")
        assert other.get(f"/reports/{known}").json()["state"] == "SUCCESS"  # 결과 백엔드(Redis)는 있다
    assert "Traceback" not in web.log and " 500 " not in web.log, web.log


def test_a_broker_that_never_answers_gives_503_after_the_connect_timeout():
    # 연결은 받아 두지만(listen) 아무것도 답하지 않는 브로커. 기본 설정(4초)이면 delay() 가 4초를 기다린다.
    with _silent_broker("/") as silent:
        env = {"RABBITMQ_URL": silent}
        with (
            running(WebServer(LESSON, WEB, port=free_port(), env=env)) as (web,),
            httpx.Client(base_url=web.url, timeout=WAIT_SECONDS) as other,
        ):
            answer, seconds = _timed(lambda: other.post("/reports", json={"pages": 1}))
    _assert_503(answer, seconds, "브로커")
    assert seconds >= BROKER_CONNECT_TIMEOUT_SECONDS * 0.9, seconds  # broker_connection_timeout 만큼 기다렸다
    assert "Traceback" not in web.log, web.log


def test_with_redis_down_every_report_endpoint_answers_503_and_health_still_200():
    down = {"REDIS_URL": CLOSED_PORT_URLS["REDIS_URL"]}
    report_id = str(uuid.uuid4())
    with running(WebServer(LESSON, WEB, port=free_port(), env=down)) as (web,), httpx.Client(base_url=web.url) as other:
        for path in ("/reports", "/reports/blocking"):
            _assert_503(*_timed(lambda path=path: other.post(path, json={"pages": 1})), "Redis")
        for call in (other.get, other.delete):
            _assert_503(*_timed(lambda call=call: call(f"/reports/{report_id}")), "Redis")
        _assert_503(*_timed(lambda: other.get(f"/reports/{report_id}/wait")), "Redis")
        _assert_503(*_timed(lambda: other.get(f"/reports/{report_id}/events")), "Redis")
        assert other.get("/health").status_code == 200
    assert "Traceback" not in web.log, web.log


# --- async def 엔드포인트 안의 delay() ---------------------------------------------------------------------------


def _health_while_posting(other: httpx.Client, path: str) -> float:
    """path로 POST를 보내고, 그 요청이 진행 중일 때 보낸 GET /health 의 응답 시간(초)."""
    posted = {}

    def post():
        try:
            posted["answer"] = other.post(path, json={"pages": 1})
        except httpx.HTTPError as exc:
            posted["answer"] = exc

    sender = threading.Thread(target=post)
    sender.start()
    time.sleep(HEAD_START_SECONDS)
    _, seconds = _timed(lambda: other.get("/health"))
    sender.join()
    assert getattr(posted["answer"], "status_code", None) == 202, posted["answer"]
    return seconds


def test_delay_inside_an_async_def_endpoint_stalls_an_unrelated_health_check_and_a_def_endpoint_does_not():
    # 웹 서버만 느린 브로커(프록시가 브로커의 답을 DELAY_SECONDS 늦게 전한다)에 붙는다. confirm_publish 라서
    # delay() 는 브로커의 ack를 기다리며 한 번에 DELAY_SECONDS 넘게 걸린다.
    with SlowProxy.for_url(global_config.RABBITMQ_URL) as proxy:
        env = {"RABBITMQ_URL": proxy.url_for(global_config.RABBITMQ_URL)}
        with (
            running(WebServer(LESSON, WEB, port=free_port(), env=env)) as (web,),
            httpx.Client(base_url=web.url, timeout=WAIT_SECONDS) as other,
        ):
            for path in ("/reports", "/reports/blocking"):  # 연결을 먼저 맺어 둔다(첫 연결은 왕복이 여러 번이다)
                assert other.post(path, json={"pages": 1}).status_code == 202
            _, publish = _timed(lambda: other.post("/reports", json={"pages": 1}))
            blocking = [_health_while_posting(other, "/reports/blocking") for _ in range(TRIALS)]
            fixed = [_health_while_posting(other, "/reports") for _ in range(TRIALS)]
    measured = f"publish {publish:.3f} s, /health while blocking {blocking}, while fixed {fixed}"
    print(measured)
    assert publish >= DELAY_SECONDS, measured  # 보내기 하나가 브로커의 답 한 번을 기다린다
    # 막혔다면 /health 는 보내기가 끝날 때까지(머리 출발을 빼고) 기다린다. 부하가 있으면 더 길어질 뿐이다.
    assert max(blocking) >= (DELAY_SECONDS - HEAD_START_SECONDS) * 0.8, measured
    # def 엔드포인트에서는 이벤트 루프가 놀고 있다. 부하가 큰 기계에서도 세 번 중 한 번은 곧바로 답한다.
    assert min(fixed) < DELAY_SECONDS / 2, measured
    assert statistics.median(fixed) < statistics.median(blocking), measured


# --- 요청 안의 get() --------------------------------------------------------------------------------------------


def test_forty_requests_waiting_in_get_take_every_thread_and_a_def_endpoint_waits_for_one_to_return(client, web):
    report_id = _post(client, pages=20)  # 6초. 기다리는 요청들이 먼저 끝난다(HOLD_WAIT_SECONDS)
    subscribers = redis.Redis.from_url(global_config.REDIS_URL)
    channel = f"celery-task-meta-{report_id}"

    async def scenario():
        limits = httpx.Limits(max_connections=THREADPOOL_TOKENS + 10)
        async with httpx.AsyncClient(base_url=web.url, timeout=WAIT_SECONDS, limits=limits) as many:

            async def timed(path, **params):
                answer = await many.get(path, params=params)
                assert answer.status_code == 200
                return time.monotonic()

            waits = [
                asyncio.create_task(timed(f"/reports/{report_id}/wait", timeout=HOLD_WAIT_SECONDS))
                for _ in range(THREADPOOL_TOKENS)
            ]
            # 기다리는 요청마다 자기 스레드에서 get() 을 부르고, 결과 채널을 구독한다. 40개가 모두 구독하면 스레드가
            # 모두 붙잡힌 것이다.
            await asyncio.to_thread(
                wait_until,
                lambda: subscribers.pubsub_numsub(channel)[0][1] >= THREADPOOL_TOKENS,
                "get() 으로 기다리는 요청 40개",
            )
            status, health = await asyncio.gather(timed(f"/reports/{report_id}"), timed("/health"))
            return min(await asyncio.gather(*waits)), status, health

    first_wait_done, status_done, health_done = asyncio.run(scenario())
    client.delete(f"/reports/{report_id}")
    subscribers.close()
    # def 엔드포인트(상태)는 기다리던 요청 하나가 스레드를 돌려준 뒤에야 답했다. /health(async def)는 그 전에 답했다.
    assert status_done >= first_wait_done, status_done - first_wait_done
    assert health_done < first_wait_done, health_done - first_wait_done


# --- async def 작업 ------------------------------------------------------------------------------------------


def test_an_async_def_task_fails_with_encode_error_and_asyncio_run_is_the_fix(lesson_processes):
    result = fetch_async.delay(1)
    failed = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert result.state == "FAILURE"
    assert type(failed).__name__ == "EncodeError"
    assert str(failed) == "TypeError('Object of type coroutine is not JSON serializable')"
    worker = next(process for process in lesson_processes if not isinstance(process, WebServer))
    worker.wait_for_log(r"RuntimeWarning: coroutine 'fetch_async' was never awaited", WAIT_SECONDS)
    assert fetch_with_asyncio_run.delay(2).get(timeout=WAIT_SECONDS) == {"page": 2}


# --- fork 전에 만든 데이터베이스 연결 --------------------------------------------------------------------------


FORK_QUEUE = "practice16-fork"  # fork 테스트만의 워커가 소비하는 큐


def _two_processes(name, second=None):
    """작업 name을 보내고, 그것이 연결을 다 쓴 뒤(PROGRESS) 두 번째 작업을 보낸다. 첫 작업은 그동안 바쁘게 있으므로
    두 번째 작업은 다른 풀 프로세스가 실행한다.
    """
    first = app.send_task(f"practice16.fork_db.{name}", queue=FORK_QUEUE)
    wait_until(lambda: first.state in ("PROGRESS", "SUCCESS"), f"{name} 이 연결을 다 쓰기", WAIT_SECONDS)
    other = app.send_task(f"practice16.fork_db.{second or name}", queue=FORK_QUEUE)
    return first.get(timeout=WAIT_SECONDS), other.get(timeout=WAIT_SECONDS)


def test_pool_processes_share_the_parents_postgres_session_unless_the_engine_is_disposed_in_each():
    # 풀 프로세스 둘이 모두 쉬고 있는 새 워커. 모듈의 워커는 revoke(terminate=True) 로 풀 프로세스를 잃었다가 새로
    # 띄우는 중일 수 있다(그동안은 한 프로세스가 모든 작업을 받는다).
    with running(Worker(LESSON, queues=[FORK_QUEUE])):
        a, b = _two_processes("backend_pids")
        assert a["process"] != b["process"]
        assert a["shared"] == b["shared"]  # 소켓 하나, 서버 세션 하나를 함께 쓴다
        assert a["own"] != b["own"] and a["shared"] not in (a["own"], b["own"])  # 자식마다 자기 세션
        # 한 풀 프로세스가 고치지 않은 엔진의 연결을 닫으면(Terminate 메시지), 같은 세션을 쓰던 다른 풀 프로세스의
        # 연결도 끊긴다.
        closer_pid, broken = _two_processes("close_shared", second="query_shared")
    assert broken["process"] != closer_pid
    assert broken["error"] == "OperationalError: server closed the connection unexpectedly", broken


# --- 상태: STARTED와 PROGRESS, 기억하는 시간 ------------------------------------------------------------------------


def test_the_result_backend_records_started_then_progress_per_page_then_success(client):
    # Redis 결과 백엔드는 상태를 적을 때마다 celery-task-meta-<id> 채널에도 보낸다. 보내기 전에 구독해 두면 적힌
    # 상태를 하나도 놓치지 않는다. task_track_started=True 라서 워커가 시작하면서 STARTED를 적는다.
    subscriber = redis.Redis.from_url(global_config.REDIS_URL)
    channel = subscriber.pubsub()
    channel.psubscribe("celery-task-meta-*")
    try:
        wait_until(lambda: (m := channel.get_message(timeout=0.1)) and m["type"] == "psubscribe", "구독이 시작되기")
        report_id = _post(client, pages=3)
        recorded = []

        def success():
            message = channel.get_message(timeout=0.1)
            if message and message["channel"].decode() == f"celery-task-meta-{report_id}":
                recorded.append(json.loads(message["data"]))
            return recorded and recorded[-1]["status"] == "SUCCESS"

        wait_until(success, "보고서의 상태가 모두 적히기")
    finally:
        channel.close()
        subscriber.close()
    assert [meta["status"] for meta in recorded] == ["STARTED", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"]
    assert [meta["result"] for meta in recorded[1:4]] == [{"done": n, "total": 3} for n in (1, 2, 3)]


def test_the_web_app_remembers_ids_and_keys_for_a_day_as_long_as_redis_keeps_the_results(client):
    key = str(uuid.uuid4())
    answer = client.post("/reports", json={"pages": 1}, headers={"Idempotency-Key": key})
    report_id = answer.json()["id"]
    _until_state(client, report_id, "SUCCESS")
    assert REMEMBER_SECONDS == 24 * 3600
    assert app.conf.result_expires == datetime.timedelta(days=1)  # Celery의 기본값
    for stored in (web_app.report_key(report_id), web_app.idempotency_key(key), f"celery-task-meta-{report_id}"):
        assert REMEMBER_SECONDS - 60 < web_app.store.ttl(stored) <= REMEMBER_SECONDS, stored


# --- confirm_publish 와 연결 설정 ----------------------------------------------------------------------------------

PROBE_QUEUE = "practice16-probe"  # 아무 워커도 소비하지 않는 큐. 보내는 시간만 잰다
DEFAULT_CONNECT_TIMEOUT_SECONDS = 4  # Celery의 broker_connection_timeout 기본값
DEFAULT_RETRY_SLEEP_SECONDS = 0 + 0.2 + 0.4  # 기본 재시도 정책으로 세 번 다시 보내기 전에 자는 시간의 합


def _sender(broker_url, **settings):
    sender = Celery("practice16-probe", broker=broker_url, set_as_current=False)
    sender.conf.update(task_default_queue=PROBE_QUEUE, **settings)
    return sender


def test_with_confirm_publish_delay_returns_only_after_the_broker_answers():
    # 프록시는 브로커의 답만 DELAY_SECONDS 늦게 전한다. confirms를 켠 보내기는 브로커의 ack를 기다리므로 그만큼
    # 걸리고, 끈 보내기는 답을 기다리지 않는다.
    assert app.conf.broker_transport_options == {"confirm_publish": True}
    seconds = {}
    try:
        with SlowProxy.for_url(global_config.RABBITMQ_URL) as proxy:
            url = proxy.url_for(global_config.RABBITMQ_URL)
            for confirm in (True, False):
                sender = _sender(url, broker_transport_options={"confirm_publish": confirm})
                sender.send_task("practice16.nothing")  # 연결과 큐 선언은 첫 보내기에서 끝낸다
                _, seconds[confirm] = _timed(lambda sender=sender: sender.send_task("practice16.nothing"))
                sender.close()
    finally:
        with Connection(global_config.RABBITMQ_URL) as connection:
            connection.default_channel.queue_delete(PROBE_QUEUE)
    assert seconds[True] >= DELAY_SECONDS * 0.9, seconds
    assert seconds[False] < DELAY_SECONDS / 2, seconds


def _failed_send_seconds(broker_url, **settings):
    sender = _sender(broker_url, **settings)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        sender.send_task("practice16.nothing")
    sender.close()
    return time.monotonic() - started


def test_the_lesson_settings_fail_a_send_sooner_than_celerys_defaults():
    defaults = Celery("practice16-defaults", set_as_current=False).conf
    assert defaults.broker_connection_timeout == DEFAULT_CONNECT_TIMEOUT_SECONDS
    assert defaults.task_publish_retry_policy == {
        "max_retries": 3, "interval_start": 0, "interval_max": 1, "interval_step": 0.2}  # fmt: skip
    lesson = {key: app.conf[key] for key in ("broker_connection_timeout", "task_publish_retry_policy")}
    assert lesson["broker_connection_timeout"] == BROKER_CONNECT_TIMEOUT_SECONDS == 1
    # 경우마다 주소(가상 호스트)를 다르게 준다. kombu는 같은 주소의 연결을 프로세스 안의 앱들이 함께 쓰게 하므로, 같은
    # 주소면 먼저 연 앱의 broker_connection_timeout 이 다음 앱에도 쓰인다. 웹 서버처럼 앱이 하나면 그럴 일이 없다.
    refused = "amqp://guest:guest@127.0.0.1:1/{}"  # 아무도 듣지 않는 포트: 연결을 거절한다
    with _silent_broker("{}") as quiet:
        seconds = {
            "default silent": _failed_send_seconds(quiet.format("default")),
            "lesson silent": _failed_send_seconds(quiet.format("lesson"), **lesson),
            "default refused": _failed_send_seconds(refused.format("default")),
            "lesson refused": _failed_send_seconds(refused.format("lesson"), **lesson),
        }
    # 응답하지 않는 브로커: broker_connection_timeout 만큼 기다리고 한 번에 실패한다.
    assert DEFAULT_CONNECT_TIMEOUT_SECONDS * 0.9 <= seconds["default silent"] < DEFAULT_CONNECT_TIMEOUT_SECONDS + 2
    assert BROKER_CONNECT_TIMEOUT_SECONDS * 0.9 <= seconds["lesson silent"] < BROKER_CONNECT_TIMEOUT_SECONDS + 1
    # 거절하는 브로커: 기본 정책은 0, 0.2, 0.4초를 자며 세 번 다시 보낸다. 이 앱은 곧바로 한 번만 다시 보낸다.
    assert DEFAULT_RETRY_SLEEP_SECONDS * 0.9 <= seconds["default refused"] < DEFAULT_RETRY_SLEEP_SECONDS + 1
    assert seconds["lesson refused"] < DEFAULT_RETRY_SLEEP_SECONDS / 2, seconds


# --- SSE: 헤더와 timeout 이벤트 ----------------------------------------------------------------------------------


def test_fastapi_marks_the_event_stream_as_not_to_be_cached_or_buffered(client):
    report_id = _post(client, pages=1)
    with client.stream("GET", f"/reports/{report_id}/events") as stream:
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"  # nginx 같은 프록시가 이벤트를 모아 두지 않게 한다


def test_a_stream_left_open_past_its_limit_ends_with_a_timeout_event(monkeypatch):
    # 아무 워커도 실행하지 않는(보내지 않은) 보고서: 상태는 언제까지나 PENDING이다. 제한을 짧게 줄이고, 엔드포인트의
    # 제너레이터를 이 프로세스 안에서 끝까지 읽는다. 결과 백엔드와 Redis는 실제 서버다.
    short_seconds = 0.6
    monkeypatch.setattr(web_app, "EVENTS_MAX_SECONDS", short_seconds)
    report_id = str(uuid.uuid4())

    async def read_all():
        return [(event.event, event.data) async for event in web_app.report_events(report_id)]

    assert asyncio.run(read_all()) == [
        ("progress", {"id": report_id, "state": "PENDING"}),
        ("timeout", {"id": report_id, "after_seconds": short_seconds}),
    ]


# --- 스레드 풀의 크기 --------------------------------------------------------------------------------------------


def test_anyio_gives_the_thread_pool_forty_threads_by_default():
    async def tokens():
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert asyncio.run(tokens()) == THREADPOOL_TOKENS == 40


# --- Django: config_from_object 의 namespace -------------------------------------------------------------------


def test_config_from_object_with_a_namespace_reads_the_prefixed_names():
    # Django의 settings 대신 같은 모양의 객체를 준다. CELERY_ 로 시작하는 이름만 Celery 설정이 된다.
    class Settings:
        CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
        CELERY_TASK_TRACK_STARTED = True
        BROKER_URL = "amqp://other:other@127.0.0.1:5672//"

    django_like = Celery("proj", set_as_current=False)
    django_like.config_from_object(Settings, namespace="CELERY")
    assert django_like.conf.broker_url == Settings.CELERY_BROKER_URL
    assert django_like.conf.task_track_started is True


# --- README의 명령, 주소 ------------------------------------------------------------------------------------------


def test_each_test_process_gets_its_own_web_port(web):
    from playground import isolation

    ports = {isolation.web_urls(slot)["PRACTICE16_URL"] for slot in ("gw0", "gw1", "gw9")}
    assert len(ports) == 3
    assert web.url != "http://127.0.0.1:8016"
    assert web.url == WEB.url(LESSON)  # call_tasks 가 읽는 주소(PRACTICE16_URL)에서 듣는다


@pytest.mark.parametrize("path", lesson_readmes(LESSON))
def test_every_code_excerpt_in_the_readme_is_in_a_lesson_file(path):
    # README가 옮긴 코드는 실습 파일의 한 부분 그대로다. 파일을 고치고 README를 잊으면 여기서 실패한다.
    # app.conf.update(...) 조각은 tests/test_readme.py 가 실습 앱의 설정과 비교한다. Django 프로젝트의 파일(# proj/…)은
    # 이 강좌에 없다.
    folder = PROJECT_ROOT / LESSON
    files = {"python": [f.read_text() for f in folder.glob("*.py")], "javascript": [(folder / "page.html").read_text()]}
    checked = 0
    for language, texts in files.items():
        for block in code_blocks(readme(path), language):
            if "app.conf.update(" in block or block.startswith("# proj/"):
                continue
            assert any(block in text for text in texts), block
            checked += 1
    assert checked >= 8
