"""practice01 README의 표: 하드 제한은 신호로 풀 프로세스를 되찾고, 소프트 제한은 SIGUSR1이다.

제한에 저항하는 작업(예외를 삼키는 코드, 파이썬으로 돌아오지 않는 C 코드)으로 확인한다. 배울 것이 아니라 확인할
것이라 실습 폴더에 두지 않는다. 이 모듈은 테스트이면서 워커의 앱 모듈이다. `celery -A tests.test_practice01_stubborn
worker` 로 띄운 워커는 practice01의 앱(같은 설정, 같은 큐)에 아래 작업들을 더해 실행한다.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from course import wait_until
from playground.lessons import purge
from playground.workers import Worker, running
from practice01.tasks import (
    HARD_LIMIT_SECONDS,
    OVERRUN_SECONDS,
    SOFT_LIMIT_SECONDS,
    app,
    journal,
    send,
    unlimited,
)
from tests import WAIT_SECONDS

LESSON = "practice01"
# 이 모듈의 테스트들은 아래의 워커 하나를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)
TICK_SECONDS = 0.01  # SIGTERM을 삼킨 뒤 살아 있다고 적는 간격
# billiard는 SIGTERM을 보내고 0.1초 기다린 뒤 SIGKILL을 보낸다(billiard/pool.py 의 `_trywaitkill`).
TERM_TO_KILL_SECONDS = 0.1
# 그 간격을 풀 프로세스 안에서 잰 값의 허용 범위. 아래는 살아 있다는 기록 간격과 Redis에 쓰는 시간만큼,
# 위는 바쁜 기계에서 메인 프로세스가 늦게 깨어나는 만큼 넉넉히 둔다.
TERM_TO_KILL_RANGE = (TERM_TO_KILL_SECONDS - 0.05, TERM_TO_KILL_SECONDS + 0.4)
# 풀 프로세스가 끝났다는 로그 줄은 메인 프로세스가 풀을 돌아볼 때 찍힌다. 한가한 워커에서는 몇 초 늦기도 한다.
EXIT_LOG_SECONDS = 10
C_LOOP = 10**12  # sum(range(C_LOOP)) 은 C 안에서 몇 시간 걸린다. 그동안 파이썬의 신호 처리기는 실행되지 못한다.

KILLED = r"Process 'ForkPoolWorker-\d+' pid:{pid} exited with 'signal 9 \(SIGKILL\)'"


# 작업마다 처음 적는 "시작" 줄의 pid가 그 작업을 실행한 풀 프로세스다.
@app.task(name="probe.swallows_exceptions", time_limit=HARD_LIMIT_SECONDS)
def swallows_exceptions(run_id):
    journal.write(run_id, "시작")
    caught = False
    while True:
        try:
            time.sleep(TICK_SECONDS)
            if caught:
                journal.write(run_id, "alive")
        except BaseException as exc:  # 일부러 모든 예외를 삼키는 코드
            caught = True
            code = exc.code if isinstance(exc, SystemExit) else None
            journal.write(run_id, "caught", exception=type(exc).__name__, code=code)


@app.task(name="probe.stuck_in_c", time_limit=HARD_LIMIT_SECONDS)
def stuck_in_c(run_id):
    journal.write(run_id, "시작")
    sum(range(C_LOOP))  # 돌아오지 않는 C 코드라서 SIGTERM의 파이썬 처리기가 실행될 틈이 없다
    journal.write(run_id, "끝")


@app.task(name="probe.exits_on_sigterm", time_limit=HARD_LIMIT_SECONDS)
def exits_on_sigterm(run_id):
    journal.write(run_id, "시작")

    def leave(signum, frame):
        journal.write(run_id, signal.Signals(signum).name)
        os._exit(0)  # billiard가 기다리는 0.1초 안에 곧바로 끝난다

    signal.signal(signal.SIGTERM, leave)
    time.sleep(OVERRUN_SECONDS)


@app.task(name="probe.records_soft_limit_signal", soft_time_limit=SOFT_LIMIT_SECONDS, time_limit=HARD_LIMIT_SECONDS)
def records_soft_limit_signal(run_id):
    billiards = signal.getsignal(signal.SIGUSR1)  # billiard가 풀 프로세스에 설치한 처리기

    def record(signum, frame):
        journal.write(run_id, signal.Signals(signum).name)
        billiards(signum, frame)  # 원래 처리기는 작업 안에서 `SoftTimeLimitExceeded` 를 일으킨다

    signal.signal(signal.SIGUSR1, record)
    try:
        time.sleep(OVERRUN_SECONDS)
    except SoftTimeLimitExceeded:
        journal.write(run_id, "SoftTimeLimitExceeded")
        return os.getpid()
    finally:
        signal.signal(signal.SIGUSR1, billiards)
    return None


# conftest.py 의 worker와 다르다: 이 모듈을 앱으로 띄운다(practice01의 앱에 위 작업들을 더한 것).
@pytest.fixture(scope="module")
def worker():
    purge(LESSON)
    with running(Worker("tests", module="test_practice01_stubborn")) as (worker,):
        yield worker


def started_pid(run_id):
    started = journal.read(run_id)[0]
    assert started.what == "시작"
    return started.pid


def wait_gone(worker, pid):
    """pid가 이 워커의 프로세스에서 사라지고, 풀이 다시 제 크기로 돌아올 때까지 기다린다."""

    def gone():
        pids = worker.pids()
        return pid not in pids and len(pids) == 1 + worker.concurrency

    wait_until(gone, "풀 프로세스가 사라지고 다시 제 크기로 돌아온 풀", EXIT_LOG_SECONDS)


def wait_killed(worker, pid):
    worker.wait_for_log(KILLED.format(pid=pid), EXIT_LOG_SECONDS)
    wait_gone(worker, pid)


# SIGTERM과 SIGKILL 사이를 잰다. 코어 둘이 바쁘면 메인 프로세스가 늦게 깨어나 간격이 늘어나므로 혼자 잰다.
@pytest.mark.alone
def test_hard_limit_kills_a_task_that_swallows_the_sigterm_about_a_tenth_of_a_second_later(worker):
    result, run_id = send(swallows_exceptions)
    assert isinstance(result.get(timeout=WAIT_SECONDS, propagate=False), TimeLimitExceeded)
    pid = started_pid(run_id)
    wait_killed(worker, pid)
    caught, *alive = journal.read(run_id)[1:]
    assert caught.what == "caught" and {entry.what for entry in alive} <= {"alive"}
    # billiard의 풀 프로세스는 SIGTERM을 `sys.exit(-(256 - 15))` 로 바꾼다.
    # 작업 안의 `SystemExit` 는 SIGTERM이 보낸 것이다.
    assert (caught["exception"], 256 + caught["code"]) == ("SystemExit", signal.SIGTERM)
    assert alive, "the process was killed before it could note that it was still alive"
    low, high = TERM_TO_KILL_RANGE
    assert low <= alive[-1].at - caught.at <= high


def test_hard_limit_kills_a_task_stuck_in_c_code(worker):
    result, run_id = send(stuck_in_c)
    assert isinstance(result.get(timeout=WAIT_SECONDS, propagate=False), TimeLimitExceeded)
    pid = started_pid(run_id)
    wait_killed(worker, pid)
    assert journal.whats(run_id) == ["시작"]
    assert isinstance(unlimited.delay().get(timeout=WAIT_SECONDS), int)  # 되찾은 자리에서 다음 작업이 돈다


def test_hard_limit_sends_no_sigkill_to_a_process_that_exits_on_sigterm(worker):
    result, run_id = send(exits_on_sigterm)
    assert isinstance(result.get(timeout=WAIT_SECONDS, propagate=False), TimeLimitExceeded)
    pid = started_pid(run_id)
    wait_gone(worker, pid)
    assert journal.whats(run_id)[1:] == ["SIGTERM"]
    assert f"pid:{pid} exited with" not in worker.log  # 종료 코드 0이다. SIGKILL을 받지 않았다


def test_the_soft_limit_reaches_the_pool_process_as_sigusr1(worker):
    before = worker.pids()
    result, run_id = send(records_soft_limit_signal)
    pid = result.get(timeout=WAIT_SECONDS)
    assert result.state == "SUCCESS"
    assert journal.whats(run_id) == ["SIGUSR1", "SoftTimeLimitExceeded"]
    assert pid in before and pid in worker.pids()  # 소프트 제한은 프로세스를 죽이지 않는다
