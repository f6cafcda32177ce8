"""practice08 README: 풀 프로세스나 워커째 죽었을 때의 ack, reject_on_worker_lost, retry_on_worker_lost, 멱등성."""

from __future__ import annotations

import uuid

import pytest
from billiard.exceptions import WorkerLostError
from kombu import Connection, Exchange, Queue

import global_config
from course import never_within, wait_until
from playground.broker import queue_counts, queues
from practice08.tasks import (
    DELIVERY_LIMIT,
    POISON_RUNS,
    app,
    charge,
    create_tables,
    dead_lettered,
    declare_dead_letters,
    early_ack,
    effects,
    journal,
    late_ack,
    late_ack_requeued,
    poison,
    retried_on_lost,
)
from tests import WAIT_SECONDS

LESSON = "practice08"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = [pytest.mark.xdist_group(LESSON), pytest.mark.early]  # 1분쯤 걸리는 묶음
# 다시 배달된다면 이 안에 온다(관찰: 약 0.1초). 이만큼 기다려도 실행 기록이 늘지 않으면 다시 오지 않은 것이다.
REDELIVERY_WINDOW_SECONDS = 1.5


def crashed(task):
    run_id = str(uuid.uuid4())
    result = task.delay(run_id)
    value = result.get(timeout=WAIT_SECONDS, propagate=False)
    return result, value, run_id


def _no_more_runs(run_id, seconds=REDELIVERY_WINDOW_SECONDS):
    """seconds 동안 run_id 의 실행 기록이 지금보다 늘지 않는지 지켜본다."""
    done = len(journal.read(run_id))
    never_within(seconds, lambda: len(journal.read(run_id)) > done, f"다시 온 실행 (키 {journal.key(run_id)})")


@pytest.mark.parametrize("task", [early_ack, late_ack], ids=["early_ack", "late_ack"])
def test_a_killed_pool_process_fails_the_task_and_the_message_never_comes_back(worker, task):
    result, value, run_id = crashed(task)
    assert result.state == "FAILURE"
    assert isinstance(value, WorkerLostError)
    assert str(value).startswith("Worker exited prematurely: signal 9 (SIGKILL) Job: ")
    assert len(journal.read(run_id)) == 1
    _no_more_runs(run_id)
    assert queue_counts(LESSON)[0] == 0  # 큐에서 배달을 기다리는 메시지가 없다
    assert "Process 'ForkPoolWorker-" in worker.log and "exited with 'signal 9 (SIGKILL)'" in worker.log


def test_reject_on_worker_lost_requeues_and_the_second_delivery_is_marked_redelivered(worker):
    result, value, run_id = crashed(late_ack_requeued)
    assert (result.state, value) == ("SUCCESS", "끝남: 2번째 실행")
    runs = journal.read(run_id)
    assert [run["redelivered"] for run in runs] == [False, True]
    assert [run["retries"] for run in runs] == [0, 0]  # 재시도가 아니라 같은 메시지의 재배달
    assert runs[0].pid != runs[1].pid  # 죽은 프로세스 대신 새 풀 프로세스


def test_late_ack_acks_on_a_lost_worker_because_acks_on_failure_defaults_to_true():
    # Celery 5.7은 작업의 acks_on_failure 를 본다: task_acks_on_failure 가 없으면 acks_on_failure_or_timeout(True).
    assert app.conf.task_acks_on_failure is None and app.conf.task_acks_on_failure_or_timeout is True
    assert late_ack.acks_on_failure is True


TRACEBACK = "Task handler raised error: WorkerLostError"


def test_every_death_but_a_retry_logs_a_worker_lost_traceback(worker):
    before = worker.log.count(TRACEBACK)
    crashed(late_ack_requeued)
    worker.wait_for_log(rf"(?s)(?:{TRACEBACK}.*){{{before + 1}}}", WAIT_SECONDS)
    before = worker.log.count(TRACEBACK)
    result, _, _ = crashed(retried_on_lost)
    assert result.state == "SUCCESS"
    # 재시도는 `retry: Retry in 1s` 만 남긴다
    never_within(REDELIVERY_WINDOW_SECONDS, lambda: worker.log.count(TRACEBACK) > before, "재시도의 traceback")


def test_retry_on_worker_lost_sends_a_retry(worker):
    result, value, run_id = crashed(retried_on_lost)
    assert (result.state, value) == ("SUCCESS", "끝남: 2번째 실행")
    runs = journal.read(run_id)
    assert [(run["retries"], run["redelivered"]) for run in runs] == [(0, False), (1, False)]
    assert f"retried_on_lost[{result.id}] retry: Retry in 1s: WorkerLostError(" in worker.log


def test_retry_on_worker_lost_obeys_max_retries(worker):
    # 재시도가 이미 max_retries(3)번이면 다시 보내지 않는다: FAILURE(WorkerLostError), 실행은 한 번.
    run_id = str(uuid.uuid4())
    result = retried_on_lost.apply_async((run_id,), retries=retried_on_lost.max_retries)
    value = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert result.state == "FAILURE" and isinstance(value, WorkerLostError)
    _no_more_runs(run_id, REDELIVERY_WINDOW_SECONDS + retried_on_lost.default_retry_delay)
    assert [run["retries"] for run in journal.read(run_id)] == [3]


def test_a_redelivered_charge_runs_twice_and_only_the_guarded_effect_stays_single(worker):
    create_tables()
    run = str(uuid.uuid4())
    results = [charge.delay(run, 1, guarded=True, crash_after_commit=True)]
    results.append(charge.delay(run, 2, guarded=False, crash_after_commit=True))
    assert [r.get(timeout=WAIT_SECONDS) for r in results] == [1, 2]
    assert effects(run) == (1, 2, 4)


def test_a_task_that_dies_every_time_loops_on_a_classic_queue_until_it_is_revoked(worker):
    # reject_on_worker_lost: 죽을 때마다 큐로. 클래식 큐는 세지 않으므로 끝나지 않는다. revoke가 다음 배달을 버린다.
    run_id = str(uuid.uuid4())
    result = poison.delay(run_id)
    runs = journal.wait_for(run_id, POISON_RUNS, timeout=WAIT_SECONDS)
    assert [run["redelivered"] for run in runs[:POISON_RUNS]] == [False, True, True]
    app.control.revoke(result.id)
    wait_until(lambda: result.state == "REVOKED", "poison의 REVOKED 상태", WAIT_SECONDS)
    _no_more_runs(run_id)
    assert worker.log.count(f"Discarding revoked task: practice08.tasks.poison[{result.id}]") == 1


def test_on_a_quorum_queue_a_task_that_dies_every_time_is_dead_lettered_after_the_delivery_limit(worker):
    # Celery의 reject(죽음마다 requeue)도 쿼럼 큐의 delivery-count 에 들어간다: 처음 한 번 + 한도만큼 되돌아온 뒤.
    declare_dead_letters()
    run_id = str(uuid.uuid4())
    result = poison.apply_async((run_id,), queue="practice08.quorum")
    headers = wait_until(lambda: dead_lettered(result.id), "dead-letter 큐에 온 poison의 메시지", WAIT_SECONDS)
    assert headers["x-first-death-reason"] == "delivery_limit"
    assert headers["x-first-death-queue"] == "practice08.quorum"
    assert len(journal.read(run_id)) == DELIVERY_LIMIT + 1
    assert queue_counts("practice08.quorum")[0] == 0
    assert result.state == "STARTED"  # 아무도 FAILURE를 적지 않는다


def test_a_quorum_queue_has_a_delivery_limit_of_20_by_default_and_drops_without_a_dead_letter_exchange():
    name = f"practice08.limit-{uuid.uuid4().hex[:6]}"
    with Connection(global_config.RABBITMQ_URL) as conn:
        channel = conn.channel()
        Queue(name, Exchange(name), routing_key=name, queue_arguments={"x-queue-type": "quorum"})(channel).declare()
        limited = Queue(
            f"{name}-2",
            Exchange(f"{name}-2"),
            routing_key=f"{name}-2",
            queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 1},
        )
        limited(channel).declare()
        try:

            def limits():  # 관리 API는 몇 초 늦게 채운다
                found = {q["name"]: q.get("delivery_limit") for q in queues() if q["name"].startswith(name)}
                return found if len(found) == 2 and None not in found.values() else None

            reported = wait_until(limits, "관리 API의 delivery_limit 두 개", WAIT_SECONDS)
            assert reported == {name: 20, f"{name}-2": 1}
            conn.Producer(channel).publish({"n": 1}, exchange=f"{name}-2", routing_key=f"{name}-2")
            for _ in range(2):  # 처음 배달 한 번 + 한도(1)만큼 되돌아온 한 번: 둘 다 받을 수 있다
                message = wait_until(lambda: channel.basic_get(f"{name}-2"), "되돌아온 메시지", WAIT_SECONDS)
                channel.basic_reject(message.delivery_tag, requeue=True)  # Celery의 reject와 같은 것
            # dead-letter exchange가 없어 버려졌다
            never_within(REDELIVERY_WINDOW_SECONDS, lambda: channel.basic_get(f"{name}-2"), "한도를 넘긴 메시지")
            assert queue_counts(f"{name}-2") == (0, 0)
        finally:
            channel.queue_delete(name)
            channel.queue_delete(f"{name}-2")
