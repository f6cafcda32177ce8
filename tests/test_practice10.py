"""practice10 README: revoke의 한계(재시작과 mingle, --statedb, 워커 없음), 풀마다의 terminate, rate_limit 은
워커마다, --autoscale 과 inspect stats의 autoscaler, threads/solo 의 --concurrency.

모듈 내내 쓰는 워커는 없다. 테스트마다 풀, 동시성, --statedb, mingle이 다른 워커를 스스로 띄우고 멈춘다.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import datetime

import pytest
from celery.exceptions import TaskRevokedError
from celery.result import AsyncResult

from course import wait_until
from playground import PROJECT_ROOT, broker
from playground.lessons import lesson_workers, purge
from playground.workers import Worker, running
from practice10.call_tasks import running_on
from practice10.tasks import COUNTDOWN_SECONDS, LONG_SECONDS, app, journal, limited, work
from tests import WAIT_SECONDS
from tests.readme import command_starting, lesson_readmes, parse, readme

LESSON = "practice10"

# 아무 워커도 없을 때 보낸 revoke가 (누군가에게 닿는다면) 닿을 시간. 지나도 닿을 곳이 없다는 것을 보인다.
REVOKE_SETTLE_SECONDS = 0.5
# 이웃 워커만 소비하는 큐: 이웃은 그 작업을 가져가지 않고 revoke만 받는다.
NEIGHBOUR_QUEUE = "practice10-neighbour"
# threads와 solo에서 terminate를 보내도 끝까지 실행되는 작업의 길이.
RUNS_TO_THE_END_SECONDS = 1.5
# --autoscale 이 한가한 풀을 줄이기까지 기다리는 시간(기본 30초)을 테스트에서 줄인다.
TEST_KEEPALIVE_SECONDS = 2
AUTOSCALE_TASKS = 6  # --autoscale=4,1의 최대(4)보다 많이
AUTOSCALE_TASK_SECONDS = 3
AUTOSCALE_LONG_SECONDS = 6  # 짧은 작업이 끝난 뒤에도 keepalive보다 오래 실행되도록
LOG_CLOCK_SLACK_SECONDS = 0.01  # 워커 로그의 시각은 밀리초까지만 적힌다

README_KO = readme(lesson_readmes(LESSON)[0])


def _worker_args(command: str) -> list[str]:
    """README의 `celery -A … worker …` 명령에서 worker 뒤의 옵션들(--loglevel 은 Worker가 붙인다)."""
    argv = parse(command).argv
    return [arg for arg in argv[argv.index("worker") + 1 :] if not arg.startswith("--loglevel")]


# --- revoke의 한계: 다시 뜬 워커, mingle, --statedb, 워커 없음 ----------------------------------------------------


@pytest.mark.parametrize(
    ("neighbour", "mingle", "discarded"),
    [(True, True, True), (False, True, False), (True, False, False)],
    ids=["neighbour-alive-mingle-on", "no-neighbour", "neighbour-alive-without-mingle"],
)
def test_a_restarted_worker_knows_a_revoke_only_from_a_live_neighbour(neighbour, mingle, discarded):
    # 워커가 countdown 작업을 쥔 채 revoke를 받고 멈춘다. 다시 배달된 메시지를 다시 뜬 워커가 버리는지는
    # 그 revoke를 받은 다른 워커가 떠 있고, 새 워커가 시작할 때 그 워커에게서 취소 목록을 받아 오는지(mingle)에 달렸다.
    purge(LESSON)
    run = journal.new_run()
    first = Worker(LESSON)
    others = (Worker(LESSON, queues=[NEIGHBOUR_QUEUE]),) if neighbour else ()
    try:
        with running(first, *others):
            held = work.apply_async((run,), countdown=COUNTDOWN_SECONDS)
            first.wait_for_log(rf"Task practice10.tasks.work\[{held.id}\] received", WAIT_SECONDS)
            app.control.revoke(held.id)
            first.wait_for_log(rf"Tasks flagged as revoked: {held.id}", WAIT_SECONDS)
            for other in others:  # revoke는 큐와 상관없이 모든 워커에게 간다
                other.wait_for_log(rf"Tasks flagged as revoked: {held.id}", WAIT_SECONDS)
            assert held.state == "REVOKED"
            first.stop()  # warm shutdown: 쥐고 있던(ack 하지 않은) 메시지는 큐로 돌아간다
            # fast_start=False 가 학습자의 명령 그대로(mingle과 gossip이 켜진 워커)다.
            with running(Worker(LESSON, fast_start=not mingle)) as (again,):
                if discarded:
                    again.wait_for_log(r"mingle: sync with 1 nodes", WAIT_SECONDS)
                    again.wait_for_log(
                        rf"Discarding revoked task: practice10.tasks.work\[{held.id}\]",
                        WAIT_SECONDS + COUNTDOWN_SECONDS,
                    )
                else:
                    # 읽을 때마다 새 AsyncResult: 끝난 state(REVOKED)를 한 번 읽은 객체는 그 값을 기억해 두고 다시
                    # 묻지 않는다.
                    wait_until(
                        lambda: AsyncResult(held.id, app=app).state == "SUCCESS",
                        "다시 뜬 워커가 취소된 작업을 실행함",
                        WAIT_SECONDS + COUNTDOWN_SECONDS,
                    )
                    if mingle:
                        assert "mingle: all alone" in again.log
                    else:
                        assert "mingle:" not in again.log
    finally:
        if neighbour:
            broker.delete_queue(NEIGHBOUR_QUEUE)
    if discarded:
        assert journal.read(run) == []
        assert AsyncResult(held.id, app=app).state == "REVOKED"
    else:
        assert journal.whats(run) == ["시작", "끝", "finally"]
        assert held.state == "REVOKED"  # 같은 id를 새로 읽으면 SUCCESS 인데, 먼저 만든 객체는 여전히 REVOKED (함정)


def test_with_statedb_the_restarted_worker_still_discards_it(tmp_path):
    # 이웃 워커도 mingle도 없이: 취소 목록은 파일에서 온다.
    statedb = str(tmp_path / "worker-state")
    purge(LESSON)
    run = journal.new_run()
    first = Worker(LESSON, extra_args=[f"--statedb={statedb}"])
    with running(first):
        held = work.apply_async((run,), countdown=COUNTDOWN_SECONDS)
        first.wait_for_log(rf"Task practice10.tasks.work\[{held.id}\] received", WAIT_SECONDS)
        app.control.revoke(held.id)
        first.wait_for_log("Tasks flagged as revoked", WAIT_SECONDS)
    with running(Worker(LESSON, extra_args=[f"--statedb={statedb}"])) as (again,):
        again.wait_for_log(
            rf"Discarding revoked task: practice10.tasks.work\[{held.id}\]", WAIT_SECONDS + COUNTDOWN_SECONDS
        )
    assert journal.read(run) == []


def test_a_revoke_sent_while_no_worker_runs_is_lost():
    purge(LESSON)
    run = journal.new_run()
    queued = work.delay(run)
    app.control.revoke(queued.id)  # 듣는 워커가 없다
    time.sleep(REVOKE_SETTLE_SECONDS)
    with running(*lesson_workers(LESSON)):
        assert queued.get(timeout=WAIT_SECONDS)  # 나중에 뜬 워커는 그 취소를 모른다
    assert journal.whats(run) == ["시작", "끝", "finally"]


# README: 같은 결과 백엔드를 쓰는 다른 워커도 revoke를 받는다. 그 작업을 모르는 워커는 백엔드에 아직 PENDING인
# 작업을 REVOKED('revoked')로 적고, 호출하는 쪽의 get() 은 먼저 적힌 그 상태를 받는다.
RUNS_ON_SECONDS = 1.5  # revoke를 받은 뒤에도 끝까지 실행되는 작업의 길이


@pytest.mark.parametrize("to_its_worker_only", [False, True], ids=["broadcast", "destination"])
def test_a_neighbour_sharing_the_backend_marks_a_running_task_revoked(to_its_worker_only):
    purge(LESSON)
    try:
        with running(Worker(LESSON), Worker(LESSON, queues=[NEIGHBOUR_QUEUE])) as (first, _neighbour):
            run = journal.new_run()
            result = work.delay(run, RUNS_ON_SECONDS)
            journal.wait_for(run, 1, timeout=WAIT_SECONDS)
            wait_until(lambda: running_on(first.node, result.id), "작업을 실행 중이라고 답하는 워커", WAIT_SECONDS)
            app.control.revoke(result.id, destination=[first.node] if to_its_worker_only else None)
            value = result.get(timeout=WAIT_SECONDS, propagate=False)
            journal.wait_for(run, 3, timeout=WAIT_SECONDS)  # 시작, 끝, finally: 작업은 끝까지 실행되었다
            final = wait_until(
                lambda: AsyncResult(result.id, app=app).state == "SUCCESS", "작업의 SUCCESS", WAIT_SECONDS
            )
    finally:
        broker.delete_queue(NEIGHBOUR_QUEUE)
    assert journal.whats(run) == ["시작", "끝", "finally"]
    assert final  # 끝까지 실행된 작업의 SUCCESS가 REVOKED를 덮어썼다
    if to_its_worker_only:
        assert value == first.node  # 실행한 워커만 받은 revoke: 실행 중인 작업은 건드리지 않는다
    else:
        assert repr(value) == "TaskRevokedError('revoked')"  # 이웃 워커가 먼저 적은 상태


# --- terminate=True: 풀마다 ---------------------------------------------------------------------------------------

# 작업 안에서 terminate가 나타나는 예외: prefork는 SIGTERM(billiard가 SystemExit로), gevent는 greenlet을 죽인다.
TERMINATED_AS = {"prefork": "SystemExit", "gevent": "GreenletExit"}


@pytest.mark.parametrize("pool", sorted(TERMINATED_AS))
def test_terminate_stops_a_running_task_in_prefork_and_gevent(pool):
    purge(LESSON)
    with running(Worker(LESSON, pool=pool, concurrency=2)) as (worker,):
        run = journal.new_run()
        result = work.delay(run, LONG_SECONDS)
        journal.wait_for(run, 1, timeout=WAIT_SECONDS)
        # 메인 프로세스가 실행 중으로 알기 전의 revoke는 'revoked'로 적힌다(practice10/call_tasks.py 의 2단계)
        wait_until(lambda: running_on(worker.node, result.id), "작업을 실행 중이라고 답하는 워커", WAIT_SECONDS)
        reply = app.control.revoke(
            result.id, terminate=True, reply=True, destination=[worker.node], timeout=WAIT_SECONDS
        )
        error = result.get(timeout=WAIT_SECONDS, propagate=False)
        whats = [entry.what for entry in journal.wait_for(run, 3, timeout=WAIT_SECONDS)]
    assert reply == [{worker.node: {"ok": f"terminate: {result.id}"}}]
    assert f"Terminating {result.id} (15)" in worker.log
    assert isinstance(error, TaskRevokedError) and repr(error) == "TaskRevokedError('terminated')"
    assert AsyncResult(result.id, app=app).state == "REVOKED"
    assert whats == ["시작", TERMINATED_AS[pool], "finally"]
    stamps = [entry.at for entry in journal.read(run)]
    assert stamps[-1] - stamps[0] < LONG_SECONDS / 2  # 30초짜리 작업이 곧 멈췄다


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_threads_and_solo_cannot_terminate_a_running_task(pool):
    purge(LESSON)
    with running(Worker(LESSON, pool=pool, concurrency=2)) as (worker,):
        run = journal.new_run()
        result = work.delay(run, RUNS_TO_THE_END_SECONDS)
        journal.wait_for(run, 1, timeout=WAIT_SECONDS)
        reply = app.control.revoke(
            result.id, terminate=True, reply=True, destination=[worker.node], timeout=WAIT_SECONDS
        )
        replied_at = time.time()
        value = result.get(timeout=WAIT_SECONDS)
    assert value == worker.node
    assert AsyncResult(result.id, app=app).state == "SUCCESS"
    assert journal.whats(run) == ["시작", "끝", "finally"]
    started, ended = journal.read(run)[0].at, journal.read(run)[1].at
    assert ended - started >= RUNS_TO_THE_END_SECONDS  # 끝까지 실행되었다
    if pool == "threads":
        # 스레드에는 따로 보낼 신호가 없다: 풀이 terminate_job 을 구현하지 않아 워커가 오류로 답한다.
        error = "NotImplementedError(\"<class 'celery.concurrency.thread.TaskPool'> does not implement kill_job\")"
        assert reply == [{worker.node: {"error": error}}]
        assert "pidbox command error: NotImplementedError" in worker.log
    else:
        # solo: 작업을 실행하는 메인 프로세스가 그동안 제어 메시지를 읽지 못한다. revoke는 작업이 끝난 뒤에 닿는다.
        assert reply == [{worker.node: {"ok": "terminate: tasks unknown"}}]
        assert replied_at >= ended


def test_which_pools_implement_terminate_job():
    # eventlet은 설치하지 않았으므로(개발 의존성도 아니다) 소스로 본다: gevent와 eventlet의 TaskPool은
    # terminate_job 을 구현하고(greenlet을 죽인다), threads와 solo는 BasePool의 NotImplementedError를 물려받는다.
    from celery.concurrency import base, eventlet, gevent, solo, thread

    assert "terminate_job" in gevent.TaskPool.__dict__
    assert "terminate_job" in eventlet.TaskPool.__dict__
    assert thread.TaskPool.terminate_job is base.BasePool.terminate_job
    assert solo.TaskPool.terminate_job is base.BasePool.terminate_job


# --- rate_limit 은 워커마다 --------------------------------------------------------------------------------------


def _rate(run: str) -> float:
    stamps = sorted(entry.at for entry in journal.read(run))
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def test_rate_limit_is_per_worker():
    # 같은 큐를 두 워커가 소비하면 합친 속도는 rate_limit 의 두 배 가까이 된다.
    purge(LESSON)
    with running(Worker(LESSON), Worker(LESSON)):
        run = journal.new_run()
        for result in [limited.delay(run) for _ in range(20)]:
            result.get(timeout=WAIT_SECONDS)
        assert _rate(run) > 5 * 1.5  # rate_limit='5/s', 워커 둘


def test_rate_limit_can_be_changed_at_run_time_with_a_control_command():
    purge(LESSON)
    with running(Worker(LESSON)) as (limited_worker,):
        app.control.rate_limit(limited.name, "1/s", destination=[limited_worker.node], reply=True, timeout=2)
        run = journal.new_run()
        for result in [limited.delay(run) for _ in range(3)]:
            result.get(timeout=WAIT_SECONDS)
    stamps = sorted(entry.at for entry in journal.read(run))
    assert stamps[-1] - stamps[0] >= 1.5  # 1초에 하나: 셋이면 약 2초 (기본값 5/s 라면 0.4초)


# --- --autoscale 과 inspect stats ---------------------------------------------------------------------------------


def _stats(node: str) -> dict:
    return app.control.inspect(destination=[node], timeout=1).stats()[node]


def _stats_until(worker: Worker, autoscaler: dict, processes: int) -> dict:
    """inspect stats의 autoscaler가 그 값이 되고 풀 프로세스가 그 수가 될 때까지 묻는다.

    current는 줄이기로 한 때 바로 바뀌고, processes는 줄인 프로세스가 끝난 뒤에 바뀐다.
    """

    def settled():
        stats = _stats(worker.node)
        assert stats["autoscaler"]["current"] <= autoscaler["max"], stats["autoscaler"]
        return stats if stats["autoscaler"] == autoscaler and len(stats["pool"]["processes"]) == processes else None

    return wait_until(settled, f"autoscaler {autoscaler}, 풀 프로세스 {processes}개", WAIT_SECONDS)


@pytest.mark.early
def test_readme_autoscale_commands_and_what_inspect_stats_says():
    # README의 두 명령 그대로: --autoscale=4,1로 띄운 워커, 그리고 `celery … inspect stats`.
    worker_args = _worker_args(
        command_starting(README_KO, "celery -A practice10.tasks worker --loglevel=info --autoscale")
    )
    assert worker_args == ["--autoscale=4,1"]
    stats_command = parse(command_starting(README_KO, "celery -A practice10.tasks inspect stats"))
    purge(LESSON)
    scaled = Worker(
        LESSON, concurrency=None, extra_args=worker_args, env={"AUTOSCALE_KEEPALIVE": str(TEST_KEEPALIVE_SECONDS)}
    )
    with running(scaled):
        assert ".> concurrency: {min=1, max=4} (prefork)" in scaled.log  # 배너
        shown = subprocess.run(
            stats_command.argv, cwd=PROJECT_ROOT, env={**os.environ, **stats_command.env},
            capture_output=True, text=True, timeout=WAIT_SECONDS,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert f"->  {scaled.node}: OK" in shown.stdout
        reply = json.loads(shown.stdout[shown.stdout.index("{") : shown.stdout.rindex("}") + 1])
        # 한가할 때: 풀 크기(current)는 min, 받아 둔 작업(qty)은 없다.
        assert reply["autoscaler"] == {"max": 4, "min": 1, "current": 1, "qty": 0}
        assert reply["pool"]["max-concurrency"] == len(reply["pool"]["processes"]) == 1

        # 짧은 넷이 풀 프로세스 넷을 차지하고, 긴 둘은 자리를 기다린다.
        results = [work.delay(journal.new_run(), AUTOSCALE_TASK_SECONDS) for _ in range(AUTOSCALE_TASKS - 2)]
        results += [work.delay(journal.new_run(), AUTOSCALE_LONG_SECONDS) for _ in range(2)]
        # 일이 밀리면: qty는 받아 둔 작업 수(실행 중인 넷과 기다리는 둘), current는 max까지 늘어난 풀 크기.
        stats = _stats_until(scaled, {"max": 4, "min": 1, "current": 4, "qty": 6}, processes=4)
        assert stats["pool"]["max-concurrency"] == 1  # 처음 크기에 머무른다: 지금 크기는 current와 processes
        # 짧은 넷이 끝나면 qty는 2: keepalive가 지나면 그 수까지 줄인다(min 까지가 아니라).
        _stats_until(scaled, {"max": 4, "min": 1, "current": 2, "qty": 2}, processes=2)
        for result in results:
            result.get(timeout=WAIT_SECONDS)
        # 모두 끝나면 min까지.
        _stats_until(scaled, {"max": 4, "min": 1, "current": 1, "qty": 0}, processes=1)

        # 줄이는 것은 마지막으로 작업을 받은 지 keepalive가 지난 뒤다: 곧 끝나는 작업 넷으로 다시 늘린 뒤 잰다.
        log_before = len(scaled.log)
        quick = [work.delay(journal.new_run(), 0.2) for _ in range(4)]
        sent_at = time.time()
        for result in quick:
            result.get(timeout=WAIT_SECONDS)
        _stats_until(scaled, {"max": 4, "min": 1, "current": 1, "qty": 0}, processes=1)
        later = scaled.log[log_before:]
        assert "Scaling up" in later
        shrunk = re.search(r"\[(\S+ \S+): INFO/MainProcess\] Scaling down", later).group(1)
        shrunk_at = datetime.strptime(shrunk, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # 워커 로그의 지역 시각
        assert shrunk_at >= sent_at + TEST_KEEPALIVE_SECONDS - LOG_CLOCK_SLACK_SECONDS, shrunk_at - sent_at
    assert "Scaling up" in scaled.log and "Scaling down" in scaled.log


def test_autoscale_waits_30_seconds_by_default_before_shrinking():
    # README: "30초". 그 값은 환경 변수 AUTOSCALE_KEEPALIVE 가 없을 때의 기본값이다(위 테스트는 2초로 줄였다).
    import inspect

    from celery.worker import autoscale

    assert "AUTOSCALE_KEEPALIVE" not in os.environ
    assert autoscale.AUTOSCALE_KEEPALIVE == 30
    assert inspect.signature(autoscale.Autoscaler).parameters["keepalive"].default == 30


# --- 풀마다의 --concurrency ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pool", "concurrency", "expected"), [("threads", 4, 4), ("solo", 4, 1)])
def test_what_concurrency_means_for_threads_and_solo(pool, concurrency, expected):
    # threads: 스레드 수, solo: 언제나 하나(--concurrency 를 주어도). 네 작업이 몇 개씩 겹치나.
    purge(LESSON)
    with running(Worker(LESSON, pool=pool, concurrency=concurrency)):
        runs = [journal.new_run() for _ in range(4)]
        for result in [work.delay(run, 0.5) for run in runs]:
            result.get(timeout=WAIT_SECONDS)
    spans = [(journal.read(run)[0].at, journal.read(run)[1].at) for run in runs]
    overlapping = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    assert overlapping == expected
