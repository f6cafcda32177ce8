"""practice16 README: 워커와 실제 uvicorn 프로세스 앞에서 웹 앱이 하는 일을 HTTP(httpx)로 확인한다.

202와 Location, 진행 상황, SSE 스트림, Idempotency-Key, 모르는 id, 실패와 취소(revoke), 브로커나 Redis가 꺼졌을 때의
503, async def 엔드포인트 안의 delay() 가 이벤트 루프를 막는 것, 요청 안의 get() 이 스레드 풀을 붙잡는 것, async def
작업, fork 전에 만든 데이터베이스 연결을 본다.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import statistics
import threading
import time
import uuid

import httpx
import pytest
import redis

import global_config
from course import Journal, needs_of, never_within, wait_until
from playground.lessons import CLOSED_PORT_URLS
from playground.slow_proxy import DELAY_SECONDS, SlowProxy
from playground.workers import WebServer, Worker, free_port, running
from practice16.tasks import (
    BROKER_CONNECT_TIMEOUT_SECONDS,
    PUBLISH_MAX_RETRIES,
    app,
    fetch_async,
    fetch_with_asyncio_run,
    journal,
)
from practice16.web import RETRY_AFTER_SECONDS
from tests import WAIT_SECONDS
from tests.readme import lesson_readmes, parse, readme, run_commands

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
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        env = {"RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"}
        with (
            running(WebServer(LESSON, WEB, port=free_port(), env=env)) as (web,),
            httpx.Client(base_url=web.url, timeout=WAIT_SECONDS) as other,
        ):
            answer, seconds = _timed(lambda: other.post("/reports", json={"pages": 1}))
    _assert_503(answer, seconds, "브로커")
    assert seconds >= BROKER_CONNECT_TIMEOUT_SECONDS * 0.9, seconds  # broker_connection_timeout 만큼 기다렸다


def test_with_redis_down_every_report_endpoint_answers_503_and_health_still_200():
    down = {"REDIS_URL": CLOSED_PORT_URLS["REDIS_URL"]}
    report_id = str(uuid.uuid4())
    with running(WebServer(LESSON, WEB, port=free_port(), env=down)) as (web,), httpx.Client(base_url=web.url) as other:
        _assert_503(*_timed(lambda: other.post("/reports", json={"pages": 1})), "Redis")
        for call in (other.get, other.delete):
            _assert_503(*_timed(lambda call=call: call(f"/reports/{report_id}")), "Redis")
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


# --- README의 명령, 주소 ------------------------------------------------------------------------------------------


def test_the_readme_uvicorn_command_serves_the_app_at_the_address_call_tasks_uses_by_default(monkeypatch):
    (command,) = [c for c in run_commands(readme(lesson_readmes(LESSON)[0])) if c.startswith("uvicorn ")]
    assert command == WEB.command(LESSON) == "uvicorn practice16.web:app --port 8016"
    monkeypatch.delenv("PRACTICE16_URL")
    default = WEB.url(LESSON)
    assert default == "http://127.0.0.1:8016"

    class ReadmeWebServer(WebServer):
        @property
        def argv(self):
            return parse(command).argv

    with running(ReadmeWebServer(LESSON, WEB, port=8016)):
        assert httpx.get(f"{default}/health").json() == {"ok": True}


def test_each_test_process_gets_its_own_web_port(web):
    from playground import isolation

    ports = {isolation.web_urls(slot)["PRACTICE16_URL"] for slot in ("gw0", "gw1", "gw9")}
    assert len(ports) == 3
    assert web.url != "http://127.0.0.1:8016"
    assert web.url == WEB.url(LESSON)  # call_tasks 가 읽는 주소(PRACTICE16_URL)에서 듣는다
