"""practice04 README 절: self.retry() 와 autoretry_for 를 진짜 워커와 Redis 결과 백엔드로 확인한다."""

from __future__ import annotations

import re
import time
from datetime import datetime
from itertools import pairwise

import pytest
from celery.exceptions import MaxRetriesExceededError, TaskRevokedError
from celery.utils.time import get_exponential_backoff_interval

from playground.lessons import run_call_tasks, worker_on_empty_queue
from practice04.tasks import (
    BACKOFF_MAX,
    MAX_RETRIES,
    RETRY_COUNTDOWN,
    always_fails,
    always_fails_without_exc,
    app,
    attempts,
    auto_retrying,
    auto_retrying_slowly,
    auto_retrying_with_jitter,
    flaky,
    send,
    wait_for_state,
)
from tests.readme import assert_samples_match

STATE_WAIT = 5
WAIT = 20
EARLY = 0.05  # countdown 은 "그 전에는 아님": 간격은 이보다 더 짧아질 수 없다(시계 오차만큼의 여유)


@pytest.fixture(scope="module")
def worker():
    with worker_on_empty_queue("practice04") as worker:
        yield worker


def gaps(run_id):
    return [b["at"] - a["at"] for a, b in pairwise(attempts(run_id))]


def test_retries_count_from_zero_and_a_transient_failure_ends_in_success(worker):
    result, run_id = send(flaky)
    assert result.get(timeout=WAIT) == "성공: retries=2"
    assert [a["retries"] for a in attempts(run_id)] == [0, 1, 2]
    assert all(gap >= RETRY_COUNTDOWN - EARLY for gap in gaps(run_id))
    assert {a["worker"] for a in attempts(run_id)} == {worker.node}  # self.request.hostname


def test_a_retry_is_the_same_task_id_sent_again(worker):
    result, _ = send(flaky)
    result.get(timeout=WAIT)
    assert len(re.findall(rf"practice04\.tasks\.flaky\[{result.id}\] received", worker.log)) == 3
    assert (
        len(re.findall(rf"practice04\.tasks\.flaky\[{result.id}\] retry: Retry in {RETRY_COUNTDOWN}s", worker.log)) == 2
    )


def test_the_state_is_retry_while_waiting_for_the_next_attempt(worker):
    result, _ = send(flaky)
    assert wait_for_state(result, "RETRY", STATE_WAIT) == "RETRY"
    assert isinstance(result.info, ConnectionError)
    assert result.ready() is False
    result.get(timeout=WAIT)


def test_a_task_waiting_to_retry_is_held_by_the_worker_not_by_a_pool_process(worker):
    # 풀 프로세스보다 많은 작업이 한꺼번에 다음 시도를 기다린다. 기다림이 길어야(180초) 들여다보는 동안 다음 시도가
    # 시작하지 않는다(1초 간격이면 바쁜 기계에서는 들여다보는 사이에 다음 시도가 실행 중일 수 있다).
    waiting = [send(auto_retrying_slowly)[0] for _ in range(worker.concurrency + 1)]
    assert all(wait_for_state(r, "RETRY", STATE_WAIT) == "RETRY" for r in waiting)
    inspect = app.control.inspect(destination=[worker.node], timeout=1.0)
    active = {entry["id"] for entry in inspect.active()[worker.node]}
    scheduled = {entry["request"]["id"] for entry in inspect.scheduled()[worker.node]}
    ids = {r.id for r in waiting}
    assert not ids & active  # 풀 프로세스는 아무도 이 작업들을 돌리고 있지 않다
    assert ids <= scheduled  # 워커의 메인 프로세스가 eta 까지 쥐고 있다
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


def test_max_retries_3_means_4_executions_and_exc_gives_the_original_exception(worker):
    result, run_id = send(always_fails)
    error = result.get(timeout=WAIT, propagate=False)
    assert len(attempts(run_id)) == MAX_RETRIES + 1 == 4
    assert result.state == "FAILURE"
    assert type(error) is ConnectionError
    with pytest.raises(ConnectionError, match="외부 서비스가 응답하지 않음"):
        result.get(timeout=WAIT)


def test_without_exc_the_caller_gets_max_retries_exceeded_error(worker):
    result, run_id = send(always_fails_without_exc)
    error = result.get(timeout=WAIT, propagate=False)
    assert len(attempts(run_id)) == MAX_RETRIES + 1
    assert isinstance(error, MaxRetriesExceededError)
    assert "Can't retry practice04.tasks.always_fails_without_exc" in str(error)


def test_autoretry_with_backoff_waits_1_2_then_the_cap(worker):
    result, run_id = send(auto_retrying)
    error = result.get(timeout=WAIT, propagate=False)
    assert type(error) is ConnectionError
    assert [a["retries"] for a in attempts(run_id)] == [0, 1, 2, 3]
    expected = [1, 2, BACKOFF_MAX]
    measured = gaps(run_id)
    assert len(measured) == len(expected)
    for gap, want in zip(measured, expected, strict=True):
        assert want - EARLY <= gap < want + 0.9, (measured, expected)


def test_autoretry_without_backoff_or_countdown_waits_default_retry_delay_180s(worker):
    assert auto_retrying_slowly.default_retry_delay == 180
    result, run_id = send(auto_retrying_slowly)
    assert wait_for_state(result, "RETRY", STATE_WAIT) == "RETRY"
    worker.wait_for_log(rf"auto_retrying_slowly\[{result.id}\] retry: Retry in 180s", 5)
    eta = _scheduled_eta(result.id)
    assert 170 < (eta - datetime.now().astimezone()).total_seconds() <= 180
    assert len(attempts(run_id)) == 1
    result.revoke()  # 이 워커가 180초 뒤 다시 실행하지 않게


def test_jitter_picks_a_whole_number_of_seconds_between_zero_and_the_backoff():
    picks = {get_exponential_backoff_interval(factor=1, retries=3, maximum=600, full_jitter=True) for _ in range(200)}
    assert picks <= set(range(0, 9)) and len(picks) > 1


def test_with_jitter_left_at_its_default_the_waits_never_exceed_the_backoff(worker):
    assert not hasattr(auto_retrying_with_jitter, "retry_jitter")  # 기본값을 쓴다
    result, run_id = send(auto_retrying_with_jitter)
    assert type(result.get(timeout=WAIT, propagate=False)) is ConnectionError
    measured = gaps(run_id)
    assert len(measured) == MAX_RETRIES
    for gap, ceiling in zip(measured, [1, 2, BACKOFF_MAX], strict=True):
        assert gap < ceiling + 0.9, measured


def test_a_retry_inherits_expires_and_an_expired_retry_is_discarded(worker):
    result, run_id = send(flaky, 5, expires=1.5)  # 5번 실패하도록: 두 번째 재시도(t≈2초)는 만료 뒤다
    assert wait_for_state(result, "REVOKED", timeout=WAIT) == "REVOKED"
    assert isinstance(result.info, TaskRevokedError)
    assert len(attempts(run_id)) == 2
    worker.wait_for_log(rf"Discarding revoked task: practice04\.tasks\.flaky\[{result.id}\]", 5)


def test_call_tasks_shows_attempts_spacing_and_outcomes(worker):
    run = run_call_tasks("practice04", timeout=90)
    assert run.returncode == 0, run.output
    assert_samples_match("practice04", run.output)  # README 의 출력 예시가 곧 이 출력이다
    out = run.output
    assert "flaky_result.state → 'RETRY'\n    flaky_result.info → ConnectionError('일시적 오류 (retries=0)')" in out
    assert re.search(r"auto_retrying_with_jitter 의 간격: \[[0-2], [0-2], [0-2]\]초", out)
    assert re.search(r"다음 시도 eta=\S+ \(지금부터 약 1[78]\d초 뒤\)", out)
    assert "!!" not in out
    assert out.rstrip().endswith("모든 호출이 README 에 적힌 대로 동작했습니다.")


def _scheduled_eta(task_id):
    for entries in (app.control.inspect(timeout=1.0).scheduled() or {}).values():
        for entry in entries:
            if entry["request"]["id"] == task_id:
                return datetime.fromisoformat(entry["eta"])
    raise AssertionError(f"{task_id} is not scheduled on any worker")
