"""practice16: 웹 앱에 HTTP 요청을 보내 보고서 작업을 만들고, 상태를 지켜보고, 취소한다.

작업을 직접 부르지 않는다. 브라우저가 하듯 웹 앱(practice16/web.py)에 요청을 보낸다. 먼저 다른 터미널에서 워커와
웹 서버를 띄운다:
    celery -A practice16.tasks worker --loglevel=info
    uvicorn practice16.web:app --port 8016
"""

import json
import sys
import uuid

import httpx

from course import WAIT_SECONDS, Journal, Scenario, never_within, wait_until
from practice16.lesson import NEEDS
from practice16.tasks import STEP_SECONDS, app, fetch_async, fetch_with_asyncio_run, journal

scenario = Scenario(app)
step, show = scenario.step, scenario.show

# 웹 앱의 주소. 기본값은 `http://127.0.0.1:8016` 이고, PRACTICE16_URL 환경 변수로 바꿀 수 있다.
WEB_URL = NEEDS.web.url("practice16")
SETTLE_SECONDS = 1  # 같은 보고서가 한 번 더 실행되지 않는지 지켜보는 시간
web = httpx.Client(base_url=WEB_URL, timeout=WAIT_SECONDS)


def web_is_up():
    try:
        return web.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def state_of(report_id):
    return web.get(f"/reports/{report_id}").json()


def follow(location, seen):
    """Location이 가리키는 주소로 상태를 읽는다. 끝난 상태면 그 응답을 돌려준다. 읽은 상태는 seen에 모은다."""
    status = web.get(location).json()
    seen.append(status["state"])
    return status if status["state"] in ("SUCCESS", "FAILURE", "REVOKED") else None


def send_and_follow():
    sent = web.post("/reports", json={"pages": 3})
    show('POST /reports {"pages": 3}', sent.status_code, 202, note="작업을 보내고 곧바로 응답했습니다")
    location = sent.headers["Location"]
    show(
        "Location 헤더가 그 작업의 주소를 가리킵니다", location == f"/reports/{sent.json()['id']}", True, note=location
    )
    seen = []
    done = wait_until(lambda: follow(location, seen), f"끝난 보고서의 상태 ({location})")
    show("GET /reports/{id} 의 마지막 state", done["state"], "SUCCESS", note=location)
    show("그동안 읽은 state에 PROGRESS가 있었습니다", "PROGRESS" in seen, True)
    show('result["pages"]', done["result"]["pages"], 3)


def events():
    report_id = web.post("/reports", json={"pages": 3}).json()["id"]
    names, progress = [], []
    with web.stream("GET", f"/reports/{report_id}/events") as stream:
        show(
            "GET /reports/{id}/events 의 Content-Type",
            stream.headers["content-type"],
            "text/event-stream; charset=utf-8",
        )
        for line in stream.iter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
            elif line.startswith("data: ") and names[-1] == "progress":
                progress.append(json.loads(line.removeprefix("data: ")).get("progress", {}).get("done", 0))
    show("마지막 이벤트", names[-1], "done", note="작업이 끝나자 스트림도 끝났습니다")
    show(
        "progress 이벤트가 여러 번 왔고 done 값은 줄어들지 않았습니다",
        progress == sorted(progress) and len(progress) > 1,
        True,
    )


def idempotency():
    run, key = Journal.new_run(), str(uuid.uuid4())
    first = web.post("/reports", json={"pages": 1, "run": run}, headers={"Idempotency-Key": key})
    again = web.post("/reports", json={"pages": 1, "run": run}, headers={"Idempotency-Key": key})
    show("같은 Idempotency-Key로 보낸 두 요청의 작업 id가 같습니다", first.json() == again.json(), True)
    journal.wait_for(run, 1, what="끝")
    never_within(SETTLE_SECONDS, lambda: len(journal.whats(run)) > 2, "같은 키로 보낸 보고서의 두 번째 실행")
    show("그 보고서의 실행 기록", journal.whats(run), ["시작", "끝"], note="작업은 한 번만 실행되었습니다")


def cancel():
    report_id = web.post("/reports", json={"pages": 20}).json()["id"]
    wait_until(lambda: state_of(report_id)["state"] == "PROGRESS", "보고서의 PROGRESS 상태")
    show("DELETE /reports/{id}", web.delete(f"/reports/{report_id}").status_code, 202)
    revoked = wait_until(lambda: (s := state_of(report_id))["state"] == "REVOKED" and s, "보고서의 REVOKED 상태")
    show("GET /reports/{id} 의 error", revoked["error"], {"type": "TaskRevokedError", "message": "terminated"})


def unknown_and_failed():
    unknown = str(uuid.uuid4())
    show(
        "AsyncResult(처음 보는 id).state",
        app.AsyncResult(unknown).state,
        "PENDING",
        note="Celery는 모른다고 하지 않습니다",
    )
    show("GET /reports/{처음 보는 id}", web.get(f"/reports/{unknown}").status_code, 404)
    report_id = web.post("/reports", json={"pages": 3, "fail_at": 2}).json()["id"]
    failed = wait_until(lambda: (s := state_of(report_id))["state"] == "FAILURE" and s, "보고서의 FAILURE 상태")
    show("실패한 보고서의 error", failed["error"], {"type": "ValueError", "message": "2쪽을 만들지 못했습니다"})
    show("응답에 traceback이 없습니다", "Traceback" not in json.dumps(failed), True)


def async_tasks():
    coroutine = fetch_async.delay(1)
    failed = coroutine.get(timeout=WAIT_SECONDS, propagate=False)
    show("fetch_async.delay(1).get(propagate=False)", type(failed).__name__, "EncodeError", note=str(failed))
    show("fetch_async 의 state", coroutine.state, "FAILURE", note="워커는 코루틴을 await하지 않았습니다")
    show(
        "fetch_with_asyncio_run.delay(1).get()", fetch_with_asyncio_run.delay(1).get(timeout=WAIT_SECONDS), {"page": 1}
    )


def fork_db():
    # fork_db.py 를 import하면 이 프로세스도 PostgreSQL에 연결한다. 그래서 작업을 이름으로 보낸다.
    first = app.send_task("practice16.fork_db.backend_pids")
    wait_until(lambda: first.state in ("PROGRESS", "SUCCESS"), "첫 backend_pids 의 PROGRESS 상태")
    second = app.send_task("practice16.fork_db.backend_pids")
    a, b = first.get(timeout=WAIT_SECONDS), second.get(timeout=WAIT_SECONDS)
    show("backend_pids 두 번: 실행한 풀 프로세스가 다릅니다", a["process"] != b["process"], True)
    show("고치지 않은 엔진: 두 풀 프로세스의 PostgreSQL 세션이 같습니다", a["shared"] == b["shared"], True)
    show("dispose(close=False) 한 엔진: 세션이 다릅니다", a["own"] != b["own"], True)


def calls():
    wait_until(web_is_up, f"웹 서버의 GET {WEB_URL}/health")
    step(f"1. POST /reports: 작업을 보내고 202를 받습니다. 쪽마다 {STEP_SECONDS:g}초가 걸립니다")
    send_and_follow()
    step("2. SSE: 진행 상황을 이벤트로 받습니다")
    events()
    step("3. Idempotency-Key: 같은 키로 두 번 보내도 작업은 하나입니다")
    idempotency()
    step("4. 모르는 id와 실패한 보고서")
    unknown_and_failed()
    step("5. async def 작업과 asyncio.run()")
    async_tasks()
    step("6. fork 전에 만든 데이터베이스 연결")
    fork_db()
    # 6단계에는 쉬고 있는 풀 프로세스 둘이 있어야 한다. 그래서 풀 프로세스를 끊는 취소(terminate=True)는 맨 뒤에 둔다.
    step("7. DELETE /reports/{id}: 실행 중인 보고서를 취소합니다(revoke, terminate=True)")
    cancel()


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
