"""practice04 README 절: self.retry() 와 autoretry_for 를 실제 워커와 Redis 결과 백엔드로 확인한다."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from celery.exceptions import MaxRetriesExceededError, TaskRevokedError
from celery.utils.time import get_exponential_backoff_interval

from course import wait_until
from playground import broker
from playground.workers import Worker, running
from practice04.call_tasks import TRAP_EXPIRES_SECONDS, scheduled_eta
from practice04.tasks import (
    BACKOFF_MAX_SECONDS,
    MAX_RETRIES,
    RETRY_COUNTDOWN_SECONDS,
    always_fails,
    always_fails_without_exc,
    app,
    auto_retrying,
    auto_retrying_slowly,
    auto_retrying_with_jitter,
    flaky,
    journal,
    retry_without_raise,
    send,
)
from tests import WAIT_SECONDS

LESSON = "practice04"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)

EARLY = 0.05  # countdown은 "그 전에는 아님": 간격은 이보다 더 짧아질 수 없다(시계 오차만큼의 여유)
INSPECT_DEFAULT_TIMEOUT_SECONDS = 1.0  # README: inspect의 timeout 기본값
JITTER_RUNS = 4  # jitter가 켜져 있으면 이 중 적어도 한 작업의 간격이 백오프 값보다 짧다(모두 꽉 찰 확률은 (1/18)**4)
# 보낼 때 잰 시각과, Celery가 그때 expires= 로 셈한 만료 시각 사이의 허용 오차.
SEND_CLOCK_SLACK_SECONDS = 1


def gaps(run_id):
    return [b.at - a.at for a, b in pairwise(journal.read(run_id))]


def retries_of(run_id):
    return [entry["retries"] for entry in journal.read(run_id)]


def test_retries_count_from_zero_and_a_transient_failure_ends_in_success(worker):
    result, run_id = send(flaky)
    assert result.get(timeout=WAIT_SECONDS) == "성공: retries=2"
    assert retries_of(run_id) == [0, 1, 2]
    assert all(gap >= RETRY_COUNTDOWN_SECONDS - EARLY for gap in gaps(run_id))
    assert {entry["worker"] for entry in journal.read(run_id)} == {worker.node}  # self.request.hostname


def test_a_retry_is_the_same_task_id_sent_again(worker):
    result, _ = send(flaky)
    result.get(timeout=WAIT_SECONDS)
    assert len(re.findall(rf"practice04\.tasks\.flaky\[{result.id}\] received", worker.log)) == 3
    assert (
        len(
            re.findall(
                rf"practice04\.tasks\.flaky\[{result.id}\] retry: "
                rf"Retry in {RETRY_COUNTDOWN_SECONDS}s: ConnectionError\(",
                worker.log,
            )
        )
        == 2
    )


def test_the_state_is_retry_while_waiting_for_the_next_attempt(worker):
    result, _ = send(flaky)
    wait_until(lambda: result.state == "RETRY", "다음 시도를 기다리는 작업(RETRY)", WAIT_SECONDS)
    assert isinstance(result.info, ConnectionError)
    assert result.ready() is False
    result.get(timeout=WAIT_SECONDS)


def test_retry_raises_by_itself_so_the_attempt_ends_there_even_without_raise(worker):
    # retry_without_raise 는 raise 없이 self.retry() 만 부른다. retry() 가 예외를 던지지 않고 돌아왔다면 첫 시도가
    # return까지 가서 "retries=0" 이 먼저 SUCCESS로 적혔을 것이다(Redis 백엔드는 첫 SUCCESS를 지킨다).
    result, run_id = send(retry_without_raise)
    assert result.get(timeout=WAIT_SECONDS) == "끝까지 실행됨: retries=1"
    assert retries_of(run_id) == [0, 1]
    worker.wait_for_log(rf"retry_without_raise\[{result.id}\] retry: Retry in {RETRY_COUNTDOWN_SECONDS}s", WAIT_SECONDS)


def test_a_task_waiting_to_retry_is_held_by_the_worker_not_by_a_pool_process(worker):
    # 풀 프로세스보다 많은 작업이 한꺼번에 다음 시도를 기다린다. 기다림이 길어야(180초) 들여다보는 동안 다음 시도가
    # 시작하지 않는다(1초 간격이면 바쁜 기계에서는 들여다보는 사이에 다음 시도가 실행 중일 수 있다).
    waiting = [send(auto_retrying_slowly)[0] for _ in range(worker.concurrency + 1)]
    for r in waiting:
        wait_until(lambda r=r: r.state == "RETRY", "다음 시도를 기다리는 작업(RETRY)", WAIT_SECONDS)
    inspect = app.control.inspect(destination=[worker.node], timeout=1.0)
    active = {entry["id"] for entry in inspect.active()[worker.node]}
    scheduled = {entry["request"]["id"] for entry in inspect.scheduled()[worker.node]}
    ids = {r.id for r in waiting}
    assert not ids & active  # 풀 프로세스는 아무도 이 작업들을 돌리고 있지 않다
    assert ids <= scheduled  # 워커의 메인 프로세스가 eta까지 쥐고 있다
    for r in waiting:
        r.revoke()  # 이 워커가 180초 뒤 다시 실행하지 않게


def test_inspect_with_a_destination_returns_on_the_answer_without_one_it_waits_the_whole_timeout(worker):
    window = 3.0
    started = time.monotonic()
    targeted = app.control.inspect(destination=[worker.node], timeout=window).scheduled()
    targeted_seconds = time.monotonic() - started
    started = time.monotonic()
    everyone = app.control.inspect(timeout=window).scheduled()
    everyone_seconds = time.monotonic() - started
    assert list(targeted) == [worker.node]
    assert worker.node in everyone
    assert targeted_seconds < window <= everyone_seconds


def test_inspect_without_a_destination_waits_at_least_the_default_timeout_of_1_second(worker):
    inspect = app.control.inspect()
    assert inspect.timeout == INSPECT_DEFAULT_TIMEOUT_SECONDS
    started = time.monotonic()
    replies = inspect.scheduled()
    seconds = time.monotonic() - started
    assert worker.node in replies  # 답은 곧바로 왔지만
    assert seconds >= INSPECT_DEFAULT_TIMEOUT_SECONDS  # 워커가 더 있을지 모르므로 timeout이 지나야 돌아온다


def test_max_retries_3_means_4_executions_and_exc_gives_the_original_exception(worker):
    result, run_id = send(always_fails)
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert len(journal.read(run_id)) == MAX_RETRIES + 1 == 4
    assert result.state == "FAILURE"
    assert type(error) is ConnectionError
    with pytest.raises(ConnectionError, match="외부 서비스가 응답하지 않음"):
        result.get(timeout=WAIT_SECONDS)


def test_without_exc_the_caller_gets_max_retries_exceeded_error(worker):
    result, run_id = send(always_fails_without_exc)
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert len(journal.read(run_id)) == MAX_RETRIES + 1
    assert isinstance(error, MaxRetriesExceededError)
    assert "Can't retry practice04.tasks.always_fails_without_exc" in str(error)


def test_autoretry_with_backoff_waits_1_2_then_the_cap(worker):
    result, run_id = send(auto_retrying)
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert type(error) is ConnectionError
    assert retries_of(run_id) == [0, 1, 2, 3]
    expected = [1, 2, BACKOFF_MAX_SECONDS]
    measured = gaps(run_id)
    assert len(measured) == len(expected)
    for gap, want in zip(measured, expected, strict=True):
        assert want - EARLY <= gap < want + 0.9, (measured, expected)


def test_autoretry_without_backoff_or_countdown_waits_default_retry_delay_180s(worker):
    assert auto_retrying_slowly.default_retry_delay == 180
    result, run_id = send(auto_retrying_slowly)
    wait_until(lambda: result.state == "RETRY", "다음 시도를 기다리는 작업(RETRY)", WAIT_SECONDS)
    worker.wait_for_log(rf"auto_retrying_slowly\[{result.id}\] retry: Retry in 180s", WAIT_SECONDS)
    eta = scheduled_eta(result.id, worker=worker.node)
    assert eta, f"{result.id} is not scheduled on {worker.node}"
    assert 170 < (datetime.fromisoformat(eta) - datetime.now().astimezone()).total_seconds() <= 180
    assert len(journal.read(run_id)) == 1
    result.revoke()  # 이 워커가 180초 뒤 다시 실행하지 않게


def test_jitter_picks_a_whole_number_of_seconds_between_zero_and_the_backoff():
    picks = {get_exponential_backoff_interval(factor=1, retries=3, maximum=600, full_jitter=True) for _ in range(200)}
    assert picks <= set(range(0, 9)) and len(picks) > 1


def test_with_jitter_left_at_its_default_the_waits_never_exceed_the_backoff(worker):
    assert not hasattr(auto_retrying_with_jitter, "retry_jitter")  # 기본값을 쓴다
    ceilings = [1, 2, BACKOFF_MAX_SECONDS]
    sent = [send(auto_retrying_with_jitter) for _ in range(JITTER_RUNS)]  # 재시도는 풀 프로세스를 잡지 않는다
    every = []
    for result, run_id in sent:
        assert type(result.get(timeout=WAIT_SECONDS, propagate=False)) is ConnectionError
        measured = gaps(run_id)
        assert len(measured) == MAX_RETRIES
        for gap, ceiling in zip(measured, ceilings, strict=True):
            assert gap < ceiling + 0.9, measured
        every.append(measured)
    # jitter가 꺼져 있었다면(auto_retrying) 간격은 모두 백오프 값 그대로다. 기본값(True)이면 0초부터 무작위라 더 짧은
    # 간격이 나온다.
    shorter = [gap < ceiling - 0.5 for measured in every for gap, ceiling in zip(measured, ceilings, strict=True)]
    assert any(shorter), every


def test_retry_backoff_true_waits_1_2_4_8_seconds_before_the_cap():
    # autoretry_for 가 다음 시도의 countdown을 셈하는 방법 그대로(celery/app/autoretry.py): retry_backoff=True 는 1배.
    factor = int(max(1.0, float(auto_retrying.retry_backoff)))
    waits = [get_exponential_backoff_interval(factor=factor, retries=n, maximum=600) for n in range(4)]
    assert waits == [1, 2, 4, 8]
    capped = [get_exponential_backoff_interval(factor=factor, retries=n, maximum=BACKOFF_MAX_SECONDS) for n in range(3)]
    assert capped == [1, 2, 2]


def test_a_retry_inherits_expires_and_an_expired_retry_is_discarded(worker):
    result, run_id = send(flaky, 5, expires=1.5)  # 5번 실패하도록: 두 번째 재시도(t≈2초)는 만료 뒤다
    wait_until(lambda: result.state == "REVOKED", "만료로 버려진 재시도(REVOKED)", WAIT_SECONDS)
    assert isinstance(result.info, TaskRevokedError)
    assert repr(result.info) == "TaskRevokedError('expired')"
    assert len(journal.read(run_id)) == 2
    worker.wait_for_log(rf"Discarding revoked task: practice04\.tasks\.flaky\[{result.id}\]", WAIT_SECONDS)


def test_the_trap_retry_falls_due_long_after_the_expiry_it_inherits_so_it_never_runs_again():
    # call_tasks 처럼 함정 작업을 expires=TRAP_EXPIRES_SECONDS 로 보낸다. 다음 시도를 eta까지 쥐고 있던 워커를 멈추면
    # 그 재시도 메시지가 브로커로 돌아온다. 그것을 읽어 보면 만료 시각은 처음 보낼 때의 것이고, eta는 그보다 한참
    # 뒤다. 만료 뒤에 돌아온 재시도는 실행되지 않고 버려진다(test_a_retry_inherits_expires_...).
    queue = f"practice04_trap_{uuid.uuid4().hex[:8]}"
    try:
        with running(Worker("practice04", queues=(queue,))) as (holder,):
            sent = datetime.now().astimezone()
            trap, run_id = send(auto_retrying_slowly, expires=TRAP_EXPIRES_SECONDS, queue=queue)
            wait_until(lambda: trap.state == "RETRY", "다음 시도를 기다리는 작업(RETRY)", WAIT_SECONDS)
            holder.wait_for_log(rf"auto_retrying_slowly\[{trap.id}\] retry: Retry in 180s", WAIT_SECONDS)
        path = f"queues/{broker.quoted(broker.vhost())}/{broker.quoted(queue)}/get"
        messages = broker.management("POST", path, {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
    finally:
        broker.delete_queue(queue)
    (message,) = messages
    headers = message["properties"]["headers"]
    assert (headers["id"], headers["retries"]) == (trap.id, 1)
    expires, eta = datetime.fromisoformat(headers["expires"]), datetime.fromisoformat(headers["eta"])
    slack = timedelta(seconds=SEND_CLOCK_SLACK_SECONDS)
    assert abs(expires - (sent + timedelta(seconds=TRAP_EXPIRES_SECONDS))) < slack
    assert eta - expires > timedelta(seconds=auto_retrying_slowly.default_retry_delay - 2 * TRAP_EXPIRES_SECONDS)
    assert len(journal.read(run_id)) == 1
