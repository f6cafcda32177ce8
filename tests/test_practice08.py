"""practice08 README: 풀 프로세스나 워커째 죽었을 때의 ack, reject_on_worker_lost, retry_on_worker_lost, 멱등성."""

from __future__ import annotations

import time
import uuid

import pytest
from billiard.exceptions import WorkerLostError

from playground.broker import queue_counts
from playground.lessons import run_call_tasks, worker_on_empty_queue
from practice08.tasks import (
    charge,
    create_tables,
    early_ack,
    effects,
    executions,
    late_ack,
    late_ack_requeued,
    retried_on_lost,
)
from tests import CALL_TIMEOUT_SECONDS
from tests.readme import assert_samples_match

WAIT = 20
# 다시 배달된다면 이 안에 온다(관찰: 약 0.1초). 이만큼 기다려도 실행 기록이 늘지 않으면 다시 오지 않은 것이다.
REDELIVERY_WINDOW_SECONDS = 1.5


@pytest.fixture(scope="module")
def worker():
    with worker_on_empty_queue("practice08") as worker:
        yield worker


def crashed(task):
    run_id = str(uuid.uuid4())
    result = task.delay(run_id)
    value = result.get(timeout=WAIT, propagate=False)
    return result, value, run_id


@pytest.mark.parametrize("task", [early_ack, late_ack], ids=["early_ack", "late_ack"])
def test_a_killed_pool_process_fails_the_task_and_the_message_never_comes_back(worker, task):
    result, value, run_id = crashed(task)
    assert result.state == "FAILURE"
    assert isinstance(value, WorkerLostError)
    assert str(value).startswith("Worker exited prematurely: signal 9 (SIGKILL) Job: ")
    time.sleep(REDELIVERY_WINDOW_SECONDS)
    assert len(executions(run_id)) == 1
    assert queue_counts("practice08")[0] == 0  # 큐에서 배달을 기다리는 메시지가 없다
    assert "Process 'ForkPoolWorker-" in worker.log and "exited with 'signal 9 (SIGKILL)'" in worker.log


def test_reject_on_worker_lost_requeues_and_the_second_delivery_is_marked_redelivered(worker):
    result, value, run_id = crashed(late_ack_requeued)
    assert (result.state, value) == ("SUCCESS", "끝남: 2번째 실행")
    runs = executions(run_id)
    assert [run["redelivered"] for run in runs] == [False, True]
    assert [run["retries"] for run in runs] == [0, 0]  # 재시도가 아니라 같은 메시지의 재배달
    assert runs[0]["pid"] != runs[1]["pid"]  # 죽은 프로세스 대신 새 풀 프로세스


def test_retry_on_worker_lost_sends_a_retry(worker):
    result, value, run_id = crashed(retried_on_lost)
    assert (result.state, value) == ("SUCCESS", "끝남: 2번째 실행")
    runs = executions(run_id)
    assert [(run["retries"], run["redelivered"]) for run in runs] == [(0, False), (1, False)]
    assert f"retried_on_lost[{result.id}] retry: Retry in 1s: WorkerLostError(" in worker.log


def test_a_redelivered_charge_runs_twice_and_only_the_guarded_effect_stays_single(worker):
    create_tables()
    run = str(uuid.uuid4())
    results = [charge.delay(run, 1, guarded=True, crash_after_commit=True)]
    results.append(charge.delay(run, 2, guarded=False, crash_after_commit=True))
    assert [r.get(timeout=WAIT) for r in results] == [1, 2]
    assert effects(run) == (1, 2, 4)


def test_call_tasks_runs_the_whole_scenario(worker):
    run = run_call_tasks("practice08", timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match("practice08", run.output)  # README 의 출력 예시가 곧 이 출력이다
    assert "!!" not in run.output
