"""practice10 README: 워커를 스스로 띄우는 테스트 — revoke 의 한계(재시작, --statedb, 워커 없음), rate_limit 은
워커마다, --autoscale, threads/solo 의 --concurrency.

test_practice10 의 모듈 워커가 같은 큐를 소비하면(그리고 같은 revoke 를 받으면) 결과가 섞이므로 모듈을 나눴다.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from celery.result import AsyncResult

from playground.lessons import lesson_workers, purge
from playground.workers import Worker, running
from practice10.tasks import COUNTDOWN_SECONDS, app, limited, notes, work
from tests.test_practice10 import WAIT

# 아무 워커도 없을 때 보낸 revoke 가 (누군가에게 닿는다면) 닿을 시간. 지나도 닿을 곳이 없다는 것을 보인다.
REVOKE_SETTLE_SECONDS = 0.5


def _wait_started(run: str) -> None:
    deadline = time.monotonic() + WAIT
    while not notes(run):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _held_then_revoked(statedb: str | None) -> tuple[AsyncResult, str]:
    """워커가 countdown 작업을 쥔 채 revoke 를 받고 멈춘다. 다시 띄운 워커에게 그 메시지가 다시 온다."""
    purge("practice10")
    extra = [f"--statedb={statedb}"] if statedb else []
    run = str(uuid.uuid4())
    first = Worker("practice10", extra_args=extra)
    with running(first):
        held = work.apply_async((run,), countdown=COUNTDOWN_SECONDS)
        first.wait_for_log(rf"Task practice10.tasks.work\[{held.id}\] received", WAIT)
        app.control.revoke(held.id)
        first.wait_for_log("Tasks flagged as revoked", WAIT)
        assert held.state == "REVOKED"
    return held, run


def test_revocations_live_in_the_workers_memory_without_statedb():
    # 멈췄다 다시 뜬 워커는 취소 목록을 잊는다: 다시 배달된 메시지를 실행해 SUCCESS 가 된다.
    held, run = _held_then_revoked(statedb=None)
    assert held.state == "REVOKED"  # 이 객체는 끝난 state 를 기억해 둔다(함정)
    with running(Worker("practice10")):
        deadline = time.monotonic() + WAIT + COUNTDOWN_SECONDS
        # 읽을 때마다 새 AsyncResult: 끝난 state(REVOKED)를 한 번 읽은 객체는 그 값을 기억해 두고 다시 묻지 않는다.
        while AsyncResult(held.id, app=app).state != "SUCCESS":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert [n["what"] for n in notes(run)] == ["시작", "끝", "finally"]
    assert held.state == "REVOKED"  # 같은 id 를 새로 읽으면 SUCCESS 인데, 먼저 만든 객체는 여전히 REVOKED


def test_with_statedb_the_restarted_worker_still_discards_it(tmp_path):
    statedb = str(tmp_path / "worker-state")
    held, run = _held_then_revoked(statedb=statedb)
    with running(Worker("practice10", extra_args=[f"--statedb={statedb}"])) as (again,):
        again.wait_for_log(rf"Discarding revoked task: practice10.tasks.work\[{held.id}\]", WAIT + COUNTDOWN_SECONDS)
    assert notes(run) == []


def test_a_revoke_sent_while_no_worker_runs_is_lost():
    purge("practice10")
    run = str(uuid.uuid4())
    queued = work.delay(run)
    app.control.revoke(queued.id)  # 듣는 워커가 없다
    time.sleep(REVOKE_SETTLE_SECONDS)
    with running(*lesson_workers("practice10")):
        assert queued.get(timeout=WAIT)  # 나중에 뜬 워커는 그 취소를 모른다
    assert [n["what"] for n in notes(run)] == ["시작", "끝", "finally"]


def _rate(run: str) -> float:
    stamps = sorted(n["at"] for n in notes(run))
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def test_rate_limit_is_per_worker():
    # 같은 큐를 두 워커가 소비하면 합친 속도는 rate_limit 의 두 배 가까이 된다.
    purge("practice10")
    with running(Worker("practice10"), Worker("practice10")):
        run = str(uuid.uuid4())
        for result in [limited.delay(run) for _ in range(20)]:
            result.get(timeout=WAIT)
        assert _rate(run) > 5 * 1.5  # rate_limit='5/s', 워커 둘


def test_autoscale_grows_the_pool_under_load():
    purge("practice10")
    with running(Worker("practice10", concurrency=None, extra_args=["--autoscale=4,1"])) as (scaled,):
        before = app.control.inspect(destination=[scaled.node], timeout=1).stats()[scaled.node]["autoscaler"]
        assert (before["max"], before["min"]) == (4, 1)
        runs = [str(uuid.uuid4()) for _ in range(4)]
        results = [work.delay(run, 2) for run in runs]
        deadline = time.monotonic() + WAIT
        while (stats := app.control.inspect(destination=[scaled.node], timeout=1).stats()[scaled.node])["autoscaler"][
            "qty"
        ] < 4:
            assert time.monotonic() < deadline, stats["autoscaler"]
            time.sleep(0.2)
        for result in results:
            result.get(timeout=WAIT)


@pytest.mark.parametrize(("pool", "concurrency", "expected"), [("threads", 4, 4), ("solo", 4, 1)])
def test_what_concurrency_means_for_threads_and_solo(pool, concurrency, expected):
    # threads: 스레드 수, solo: 언제나 하나(--concurrency 를 주어도). 네 작업이 몇 개씩 겹치나.
    purge("practice10")
    with running(Worker("practice10", pool=pool, concurrency=concurrency)):
        runs = [str(uuid.uuid4()) for _ in range(4)]
        for result in [work.delay(run, 0.5) for run in runs]:
            result.get(timeout=WAIT)
    spans = [(notes(run)[0]["at"], notes(run)[1]["at"]) for run in runs]
    overlapping = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    assert overlapping == expected


def test_without_concurrency_prefork_starts_one_process_per_cpu():
    purge("practice10")
    with running(Worker("practice10", concurrency=None)) as (default,):
        pool = app.control.inspect(destination=[default.node], timeout=1).stats()[default.node]["pool"]
    assert pool["max-concurrency"] == len(pool["processes"]) == os.cpu_count()


def test_terminate_needs_a_pool_that_can_signal_the_task():
    # threads 풀: 작업은 워커 프로세스 안의 스레드라 신호를 따로 받을 수 없다. terminate 를 보내도 끝까지 돈다.
    purge("practice10")
    with running(Worker("practice10", pool="threads", concurrency=2)):
        run = str(uuid.uuid4())
        result = work.delay(run, 1)
        _wait_started(run)
        app.control.revoke(result.id, terminate=True)
        result.get(timeout=WAIT, propagate=False)
    assert [n["what"] for n in notes(run)] == ["시작", "끝", "finally"]


def test_rate_limit_can_be_changed_at_run_time_with_a_control_command():
    purge("practice10")
    with running(Worker("practice10")) as (limited_worker,):
        app.control.rate_limit(limited.name, "1/s", destination=[limited_worker.node], reply=True, timeout=2)
        run = str(uuid.uuid4())
        for result in [limited.delay(run) for _ in range(3)]:
            result.get(timeout=WAIT)
    stamps = sorted(n["at"] for n in notes(run))
    assert stamps[-1] - stamps[0] >= 1.5  # 1초에 하나: 셋이면 약 2초 (기본값 5/s 라면 0.4초)
