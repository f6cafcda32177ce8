"""practice14: 작업을 실행하는 워커를 SIGSTOP으로 멈추고, RabbitMQ가 언제 알아채는지와 깨어난 워커가 하는 일을 본다.

워커는 이 스크립트가 직접 띄운다. 다른 터미널은 필요 없다:  python -m practice14.call_tasks
"""

import os
import re
import signal
import sys
import time

from course import WAIT_SECONDS, Journal, Scenario, Worker, never_within, running, wait_until
from practice14.tasks import HEARTBEAT_SECONDS, WORK_SECONDS, app, journal, work

scenario = Scenario(app)
step, show = scenario.step, scenario.show


def two_workers(cancel_on_loss=False):
    """같은 큐를 소비하는 워커 둘을 만든다. 풀 프로세스는 앱 설정대로 하나씩이다."""
    env = {"PRACTICE14_CANCEL_ON_LOSS": "1"} if cancel_on_loss else {}
    return Worker("practice14", concurrency=None, env=env), Worker("practice14", concurrency=None, env=env)


def freeze_the_busy_one(workers):
    """작업 하나를 보내고, 그 작업을 받은 워커를 통째로 멈춘다. (run, 멈춘 워커, 멈춘 시각)을 돌려준다."""
    run = Journal.new_run()
    work.delay(run)
    started = journal.wait_for(run, 1)[0]
    frozen = next(worker for worker in workers if started.pid in worker.pids())
    # 워커는 자기 프로세스 그룹에서 실행된다. 그룹 전체(메인 프로세스와 풀 프로세스)에 보내면 VM이 멈춘 것과 같다.
    os.killpg(frozen.proc.pid, signal.SIGSTOP)
    print("    os.killpg(작업을 받은 워커, signal.SIGSTOP)   (메인 프로세스와 풀 프로세스가 함께 멈춥니다)")
    return run, frozen, time.time()


def redelivered_after(run, frozen_at):
    """멈춘 워커의 작업이 다른 워커에서 다시 시작되기를 기다린다. heartbeat 간격 한 번 안에는 시작되지 않아야 한다."""
    again = f"멈춘 뒤 {HEARTBEAT_SECONDS}초 안에 다시 시작된 실행"
    never_within(HEARTBEAT_SECONDS, lambda: journal.whats(run).count("시작") > 1, again)
    show(again, journal.whats(run).count("시작") - 1, 0)
    second = journal.wait_for(run, 2, what="시작", timeout=WAIT_SECONDS + 3 * HEARTBEAT_SECONDS)[-1]
    seconds = second.at - frozen_at
    show("다른 워커가 같은 작업을 다시 시작했습니다", second.what == "시작", True, note=f"멈추고 {seconds:.1f}초 뒤")


def log_line(worker, pattern):
    """worker의 로그에 pattern이 나올 때까지 기다렸다가 그 줄을 돌려준다."""
    found = wait_until(lambda: re.search(pattern, worker.log), f"워커 로그의 {pattern!r}")
    return found.group(0)


def counts(run):
    whats = journal.whats(run)
    return whats.count("시작"), whats.count("끝")


def calls():
    step(f"1. 멈춘 워커는 heartbeat가 끊겨 드러납니다 (broker_heartbeat={HEARTBEAT_SECONDS}초)")
    with running(*two_workers()) as workers:
        run, frozen, frozen_at = freeze_the_busy_one(workers)
        try:
            redelivered_after(run, frozen_at)
        finally:
            os.killpg(frozen.proc.pid, signal.SIGCONT)

        step("2. 깨어난 워커는 같은 작업을 마저 끝내지만 ack 하지 못합니다")
        print("    os.killpg(멈춘 워커, signal.SIGCONT)")
        journal.wait_for(run, 2, what="끝", timeout=WAIT_SECONDS + WORK_SECONDS)
        show("(실행 횟수, 효과 횟수)", counts(run), (2, 2), note="작업이 두 번 실행되었습니다")
        show("깨어난 워커의 로그", log_line(frozen, r"Couldn't ack \d+, reason:.*"))

    step("3. worker_cancel_long_running_tasks_on_connection_loss=True 면 깨어난 워커가 작업을 취소합니다")
    with running(*two_workers(cancel_on_loss=True)) as workers:
        run, frozen, frozen_at = freeze_the_busy_one(workers)
        try:
            journal.wait_for(run, 2, what="시작", timeout=WAIT_SECONDS + 3 * HEARTBEAT_SECONDS)
        finally:
            os.killpg(frozen.proc.pid, signal.SIGCONT)
        print("    os.killpg(멈춘 워커, signal.SIGCONT)")
        show("깨어난 워커의 로그", log_line(frozen, r"Task \S+ cannot be acknowledged after a connection loss.*"))
        journal.wait_for(run, 1, what="끝", timeout=WAIT_SECONDS + WORK_SECONDS)
        never_within(WORK_SECONDS, lambda: counts(run)[1] > 1, "취소된 작업의 효과")
        show("(실행 횟수, 효과 횟수)", counts(run), (2, 1), note="효과는 다른 워커가 낸 한 번뿐입니다")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
