"""practice01 README 절: 하드/소프트 시간 제한을 실제 prefork 워커(와 solo, threads 워커)로 확인한다."""

from __future__ import annotations

import os
import re
import signal

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

import global_config
from course import wait_until
from practice01.tasks import (
    HARD_LIMIT_SECONDS,
    ITEMS,
    SOFT_LIMIT_SECONDS,
    batch_with_cleanup,
    hard_limited,
    journal,
    misconfigured,
    send,
    slow_cleanup,
    unlimited,
)
from tests import WAIT_SECONDS

LESSON = "practice01"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)

KILLED = r"Process 'ForkPoolWorker-\d+' pid:(\d+) exited with 'signal 9 \(SIGKILL\)'"


def full_pool(worker):
    """하드 제한에 걸린 풀 프로세스가 모두 SIGKILL로 끝나고(앞 테스트나 call_tasks 의 것까지), 풀이 메인 프로세스 +
    concurrency 개로 돌아올 때까지 기다린 뒤 그 pid 들을 돌려준다."""

    def settled():
        log = worker.log
        limits = len(re.findall(r"Hard time limit \(\d+s\) exceeded", log))
        pids = worker.pids()
        return pids if len(re.findall(KILLED, log)) >= limits and len(pids) == 1 + worker.concurrency else None

    return wait_until(settled, "하드 제한 뒤 제 크기로 돌아온 풀", WAIT_SECONDS)


def wait_for_kill(worker, task_id):
    """task_id 의 하드 제한 뒤에 SIGKILL로 끝난 풀 프로세스가 로그에 찍힐 때까지 기다리고 그 pid를 돌려준다.

    FAILURE는 제한 시각에 곧바로 기록되고 프로세스는 그 뒤에 죽으므로, 작업이 남긴 흔적은 이다음에 읽는다.
    """
    limit = worker.wait_for_log(rf"Hard time limit \(\d+s\) exceeded for \S+\[{task_id}\]", WAIT_SECONDS)
    killed = wait_until(
        lambda: re.compile(KILLED).search(worker.log, limit.end()),
        "하드 제한 뒤 SIGKILL로 끝난 풀 프로세스",
        WAIT_SECONDS,
    )
    return int(killed.group(1))


def test_a_task_without_limits_runs_to_the_end(worker):
    result = unlimited.delay()
    assert isinstance(result.get(timeout=WAIT_SECONDS), int)
    assert result.state == "SUCCESS"


def test_hard_limit_marks_the_task_failed_with_time_limit_exceeded(worker):
    result, _ = send(hard_limited)
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert result.state == "FAILURE"
    assert isinstance(error, TimeLimitExceeded)
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=WAIT_SECONDS)
    line = worker.wait_for_log(
        rf"Hard time limit \({HARD_LIMIT_SECONDS}s\) exceeded for practice01\.tasks\.hard_limited\[{result.id}\]",
        WAIT_SECONDS,
    )
    assert line
    # 그 풀 프로세스가 SIGKILL로 끝나는 것까지 기다린다: 바쁜 기계에서는 그 줄이 다음 테스트의 하드 제한 뒤에
    # 찍혀, 다음 테스트가 남의 프로세스를 자기 것으로 읽을 수 있다.
    wait_for_kill(worker, result.id)


def test_hard_limit_terminates_the_pool_process_cleanup_starts_but_does_not_finish(worker):
    result, run_id = send(hard_limited)
    result.get(timeout=WAIT_SECONDS, propagate=False)
    killed = wait_for_kill(worker, result.id)
    started, *rest = journal.read(run_id)
    assert started.what == f"시작 (pid {killed})" and started.pid == killed
    assert [entry.what for entry in rest] == ["finally 시작"]  # SIGTERM으로 finally에 들어갔지만, SIGKILL이 먼저 왔다


def test_the_pool_replaces_a_killed_process_and_keeps_serving(worker):
    result, _ = send(hard_limited)
    result.get(timeout=WAIT_SECONDS, propagate=False)
    killed = wait_for_kill(worker, result.id)
    assert killed not in worker.pids()
    full_pool(worker)  # 풀은 죽은 프로세스 대신 새 프로세스를 띄워 크기를 되찾는다
    served = [unlimited.delay() for _ in range(worker.concurrency)]
    pids = {r.get(timeout=WAIT_SECONDS) for r in served}
    assert killed not in pids
    assert pids <= worker.pids()


# 직접 보내는 SIGUSR1이 2초 하드 제한보다 먼저 닿아야 한다. 코어 둘이 다른 테스트로 바쁘면 작업 시작, 기록,
# 신호, 정리가 2초를 넘겨 하드 제한이 먼저 올 수 있다(CI에서 그 풀 프로세스가 나중에 SIGKILL로 바뀌었다): 혼자 돈다.
@pytest.mark.alone
def test_the_soft_limit_is_a_sigusr1_signal_raised_as_an_exception_inside_the_task(worker):
    # 소프트 제한이 하는 일을 직접: 작업을 돌리는 풀 프로세스에 SIGUSR1을 보낸다(우리가 띄운 워커의 자식이다).
    result, run_id = send(hard_limited)
    started = journal.wait_for(run_id, 1, timeout=WAIT_SECONDS)[0]
    assert started.pid in worker.pids()
    os.kill(started.pid, signal.SIGUSR1)
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert isinstance(error, SoftTimeLimitExceeded)
    assert journal.whats(run_id)[1:] == ["finally 시작", "finally 끝"]  # 예외라서 정리가 끝까지 돈다


# 풀 프로세스 pid 들이 그대로인지 본다: 바쁜 기계에서 앞 테스트의 하드 제한이 늦게 닿아 프로세스를 바꾸면 틀린다.
@pytest.mark.alone
def test_soft_limit_raises_inside_the_task_and_the_cleanup_reaches_the_caller(worker):
    pool = full_pool(worker)
    result, run_id = send(batch_with_cleanup)
    value = result.get(timeout=WAIT_SECONDS)
    assert worker.pids() == pool  # 소프트 제한은 프로세스를 죽이지 않는다
    assert result.state == "SUCCESS"
    assert value["cleaned_up"] is True
    assert 0 < value["processed"] < ITEMS
    assert journal.whats(run_id) == [f"소프트 제한: {value['processed']}개 처리 후 정리 시작", "정리 끝"]
    worker.wait_for_log(
        rf"Soft time limit \({SOFT_LIMIT_SECONDS}s\) exceeded for practice01\.tasks\.batch_with_cleanup\[{result.id}\]",
        WAIT_SECONDS,
    )


def test_a_cleanup_longer_than_the_margin_is_cut_by_the_hard_limit(worker):
    result, run_id = send(slow_cleanup)
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    wait_for_kill(worker, result.id)
    assert result.state == "FAILURE"
    assert isinstance(error, TimeLimitExceeded)
    assert journal.whats(run_id) == ["소프트 제한: 정리 시작"]


def test_soft_limit_above_hard_limit_is_rejected_when_called_not_when_defined():
    assert misconfigured.soft_time_limit > misconfigured.time_limit  # 정의(임포트)는 됐다
    with pytest.raises(ValueError, match="soft_time_limit must be less than or equal to time_limit"):
        misconfigured.delay()


def test_app_wide_limits_are_checked_the_same_way_when_the_decorator_gives_none():
    probe = Celery("limits_probe", broker=global_config.RABBITMQ_URL, set_as_current=False)
    probe.conf.update(task_soft_time_limit=HARD_LIMIT_SECONDS + 3, task_time_limit=HARD_LIMIT_SECONDS)

    @probe.task(name="limits_probe.plain", shared=False)
    def plain():
        pass

    assert (plain.soft_time_limit, plain.time_limit) == (HARD_LIMIT_SECONDS + 3, HARD_LIMIT_SECONDS)  # 앱 설정에서 왔다
    with pytest.raises(ValueError, match="soft_time_limit must be less than or equal to time_limit"):
        plain.delay()


def test_limits_given_to_apply_async_are_not_checked(worker):
    result = unlimited.apply_async(soft_time_limit=HARD_LIMIT_SECONDS + 3, time_limit=HARD_LIMIT_SECONDS)
    assert isinstance(result.get(timeout=WAIT_SECONDS), int)
