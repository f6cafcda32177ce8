"""practice10: 보낸 작업을 revoke로 취소하고, rate_limit으로 실행 속도를 제한하고, 워커의 풀을 들여다본다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice10.tasks worker --loglevel=info
그다음:                             python -m practice10.call_tasks
"""

import sys
import time

from celery.exceptions import TaskRevokedError

from course import WAIT_SECONDS, Journal, Scenario, never_within, wait_until
from practice10.tasks import (
    COUNTDOWN_SECONDS,
    LONG_SECONDS,
    RATE,
    RATE_PER_SECOND,
    RATE_TASKS,
    app,
    journal,
    limited,
    work,
)

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect

INSPECT_SECONDS = 1.0  # inspect가 그 워커의 답을 기다리는 상한


def held_by(hostname, task_id):
    """hostname 워커가 task_id 를 eta까지 쥐고 있는지 inspect().scheduled() 로 본다."""
    replies = app.control.inspect(destination=[hostname], timeout=INSPECT_SECONDS, limit=1).scheduled() or {}
    return any(entry["request"]["id"] == task_id for entry in replies.get(hostname, []))


def running_on(hostname, task_id):
    """hostname 워커의 메인 프로세스가 task_id 를 실행 중으로 아는지 inspect().active() 로 본다."""
    replies = app.control.inspect(destination=[hostname], timeout=INSPECT_SECONDS, limit=1).active() or {}
    return any(entry["id"] == task_id for entry in replies.get(hostname, []))


def calls():
    step(f"1. 아직 실행되지 않은 작업 취소 (countdown={COUNTDOWN_SECONDS})")
    hostname = work.delay(Journal.new_run()).get(timeout=WAIT_SECONDS)  # 워커가 있는지, 어느 워커인지 알아 둔다
    run = Journal.new_run()
    held = work.apply_async((run,), countdown=COUNTDOWN_SECONDS)
    wait_until(lambda: held_by(hostname, held.id), "countdown 작업을 쥐고 있는 워커")
    app.control.revoke(held.id)
    wait_until(lambda: app.AsyncResult(held.id).state != "PENDING", "워커에 닿은 revoke")
    show("revoke 뒤 state", held.state, "REVOKED", note="워커 로그: Tasks flagged as revoked")
    # countdown이 지나는 동안 한 번도 실행되지 않는다(워커가 그때 버린다)
    never_within(COUNTDOWN_SECONDS, lambda: journal.whats(run), "취소한 작업의 실행 기록")
    show(
        "countdown이 지난 뒤의 실행 기록",
        journal.whats(run),
        [],
        note="워커 로그: Discarding revoked task",
    )
    show("get(propagate=False)", held.get(timeout=WAIT_SECONDS, propagate=False))

    step("2. 실행 중인 작업을 revoke(id, terminate=True) 로 멈추기")
    run = Journal.new_run()
    running = work.delay(run, LONG_SECONDS)
    journal.wait_for(run, 1)  # 작업이 풀 프로세스에서 시작했다
    # 메인 프로세스도 그 작업이 실행 중인 것을 알 때까지 기다린다. 풀 프로세스의 알림이 메인 프로세스에 닿기
    # 전에 revoke가 오면, Celery는 아직 시작하지 않은 작업처럼 REVOKED('revoked')를 먼저 적는다
    # (celery/worker/control.py 의 _revoke).
    wait_until(lambda: running_on(hostname, running.id), "작업을 실행 중이라고 답하는 워커")
    # 그 워커에게만 보낸다. 같은 결과 백엔드를 쓰는 다른 워커가 떠 있으면 그 워커도 revoke를 받고 REVOKED('revoked')를
    # 먼저 적기 때문이다(README 핵심 개념).
    app.control.revoke(running.id, terminate=True, destination=[hostname])
    error = show("get(propagate=False)", running.get(timeout=WAIT_SECONDS, propagate=False), note="SIGTERM")
    expect("terminate 된 작업의 예외", type(error), TaskRevokedError)
    show("state", running.state, "REVOKED")
    # REVOKED는 워커의 메인 프로세스가 적는다. 풀 프로세스의 finally는 그 뒤에 끝날 수 있으니 끝날 때까지 기다린다.
    journal.wait_for(run, 3)
    show(
        "실행 기록",
        journal.whats(run),
        ["시작", "SystemExit", "finally"],
        note="SIGTERM이 SystemExit로 나타나므로 finally가 실행되었습니다",
    )

    step(f"3. 워커 하나가 1초에 시작하는 작업 수 (rate_limit='{RATE}')")
    run = Journal.new_run()
    sent_at = time.time()
    for result in [limited.delay(run) for _ in range(RATE_TASKS)]:
        result.get(timeout=WAIT_SECONDS)
    stamps = [entry.at for entry in journal.read(run)]
    # 보낸 때부터 잰다. 토큰 하나짜리 버킷이라 첫 작업은 곧바로, 나머지는 1/5초 간격으로 풀에 넘겨진다.
    # 그래서 풀 프로세스가 늦게 시작해도 간격이 좁아 보이지 않는다.
    rate = (len(stamps) - 1) / (max(stamps) - sent_at)
    show(f"{RATE_TASKS}개를 한꺼번에 보냈을 때 초당 실행 수", f"{rate:.1f}", note=f"워커 하나당 최대 {RATE}")
    expect(f"초당 {RATE_PER_SECOND}번 이하", rate <= RATE_PER_SECOND * 1.05, True)

    step_4_the_pool(hostname)


def step_4_the_pool(hostname):
    """inspect().stats() 로 본 그 워커의 풀."""
    step("4. inspect().stats() 로 본 이 워커의 풀")
    stats = app.control.inspect(destination=[hostname], timeout=INSPECT_SECONDS).stats() or {}
    pool = stats.get(hostname, {}).get("pool", {})
    show("pool['implementation']", pool.get("implementation"), "celery.concurrency.prefork:TaskPool")
    show("pool['max-concurrency']", pool.get("max-concurrency"), note="--concurrency 값, 주지 않으면 CPU 수")
    show(
        "len(pool['processes']) == max-concurrency", len(pool.get("processes", [])) == pool.get("max-concurrency"), True
    )


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
