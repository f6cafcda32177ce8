"""practice08 README: 워커를 프로세스 그룹째 kill -9 하면 — 일찍 ack 대 acks_late. 그리고 --max-tasks-per-child.

이 모듈의 테스트는 워커를 스스로 띄우고 죽인다. test_practice08 의 모듈 워커가 같은 큐를 소비하지 않도록 모듈을 나눴다.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from playground.lessons import lesson_workers, purge, worker_on_empty_queue
from playground.workers import running
from practice08.tasks import early_ack, executions, late_ack, late_ack_requeued
from tests.test_practice08 import REDELIVERY_WINDOW_SECONDS, WAIT

LONG_SECONDS = 3  # 워커째 죽일 때 실행 중이어야 하는 작업의 길이


def _send_long(task, count):
    run_ids = [str(uuid.uuid4()) for _ in range(count)]
    results = [task.delay(run_id, crash=False, seconds=LONG_SECONDS) for run_id in run_ids]
    return run_ids, results


@pytest.mark.parametrize("task", [early_ack, late_ack], ids=["early_ack", "late_ack"])
def test_killing_the_whole_worker(task):
    # 풀 프로세스 둘이 하나씩 실행 중이고 둘은 미리 받아 둔(prefetch) 상태에서 워커를 프로세스 그룹째 kill -9.
    purge("practice08")
    (first,) = lesson_workers("practice08")
    with running(first):
        run_ids, results = _send_long(task, 4)
        deadline = time.monotonic() + WAIT
        while sum(len(executions(run_id)) for run_id in run_ids) < 2:
            assert time.monotonic() < deadline, first.log_tail()
            time.sleep(0.05)
        running_ids = [run_id for run_id in run_ids if executions(run_id)]
        first.kill()
    with running(*lesson_workers("practice08")):
        if task is late_ack:
            # acks_late: ack 하지 않은 메시지는 모두(실행 중이던 것도) 큐로 돌아가 새 워커가 실행한다.
            expected = [f"끝남: {2 if run_id in running_ids else 1}번째 실행" for run_id in run_ids]
            assert [r.get(timeout=WAIT) for r in results] == expected
            for run_id in running_ids:
                assert [run["redelivered"] for run in executions(run_id)] == [False, True]
        else:
            # 일찍 ack: 실행 중이던 둘은 ack 된 뒤라 잃는다. state 는 STARTED 에서 멈춘다(task_track_started).
            waiting = [r for r, run_id in zip(results, run_ids, strict=True) if run_id not in running_ids]
            assert [r.get(timeout=WAIT) for r in waiting] == ["끝남: 1번째 실행"] * 2
            time.sleep(REDELIVERY_WINDOW_SECONDS)
            lost = [r for r, run_id in zip(results, run_ids, strict=True) if run_id in running_ids]
            assert [r.state for r in lost] == ["STARTED", "STARTED"]
            assert [len(executions(run_id)) for run_id in running_ids] == [1, 1]
        # 미리 받아 두었던 메시지는 어느 쪽이든 다시 배달된다(redelivered=True).
        for run_id in run_ids:
            if run_id not in running_ids:
                assert [run["redelivered"] for run in executions(run_id)] == [True]


def test_max_tasks_per_child_replaces_the_pool_process_after_each_task():
    # README 의 한 줄: --max-tasks-per-child=N 이면 풀 프로세스가 작업 N 개를 한 뒤 새 프로세스로 바뀐다.
    with worker_on_empty_queue("practice08", concurrency=1, extra_args=["--max-tasks-per-child=1"]):
        run_ids = [str(uuid.uuid4()) for _ in range(3)]
        for run_id in run_ids:
            early_ack.delay(run_id, crash=False, seconds=0).get(timeout=WAIT)
        pids = [executions(run_id)[0]["pid"] for run_id in run_ids]
    assert len(set(pids)) == 3


def test_a_cold_shutdown_sends_the_running_acks_late_task_back_to_the_queue():
    purge("practice08")
    run_id = str(uuid.uuid4())
    (first,) = lesson_workers("practice08")
    with running(first):
        result = late_ack_requeued.delay(run_id, crash=False, seconds=LONG_SECONDS)
        deadline = time.monotonic() + WAIT
        while not executions(run_id):
            assert time.monotonic() < deadline, first.log_tail()
            time.sleep(0.05)
        first.proc.send_signal(signal.SIGQUIT)  # cold shutdown: 실행 중인 작업을 끝까지 기다리지 않는다
        first.proc.wait(WAIT)
    with running(*lesson_workers("practice08")):
        assert result.get(timeout=WAIT + LONG_SECONDS) == "끝남: 2번째 실행"
    assert [run["redelivered"] for run in executions(run_id)] == [False, True]
