"""practice13: 배포 도구 역할을 하며 워커를 멈추고 새 워커를 띄운다. 배포 도중에 실행되던 작업이 어떻게 되는지 센다.

이 실습은 워커를 직접 띄운다. 다른 터미널에서 띄울 워커가 없다.
    python -m practice13.call_tasks
"""

import os
import signal
import subprocess
import sys
from collections import Counter

from course import WAIT_SECONDS, Journal, Scenario, Worker, never_within
from practice13.tasks import (
    GRACE_SECONDS,
    SETTLE_SECONDS,
    SHORT_WORK_SECONDS,
    SOFT_SHUTDOWN_SECONDS,
    WORK_SECONDS,
    app,
    journal,
    work,
    work_acks_late,
)

scenario = Scenario(app)
step, show = scenario.step, scenario.show

# SIGTERM을 cold shutdown으로 바꾸는 billiard의 환경 변수. 워커가 시작할 때 읽는다.
SOFT_ON_SIGTERM = {"REMAP_SIGTERM": "SIGQUIT"}
started = []  # 이 시나리오가 띄운 워커들. 끝날 때 모두 멈춘다


def start_worker(env=None):
    """새 워커 하나를 띄우고 준비될 때까지 기다린다(배포의 '새 버전')."""
    worker = Worker("practice13", concurrency=3, env=env)
    started.append(worker)
    worker.start()
    worker.wait_ready()
    return worker


def deploy_stop(old):
    """배포 도구처럼 워커를 멈춘다. SIGTERM을 보내고, 유예 시간 뒤에도 살아 있으면 모든 프로세스에 SIGKILL을 보낸다."""
    os.kill(old.proc.pid, signal.SIGTERM)
    try:
        old.proc.wait(GRACE_SECONDS)
        return "유예 시간 안에 스스로 끝남"
    except subprocess.TimeoutExpired:
        os.killpg(old.proc.pid, signal.SIGKILL)  # 컨테이너의 프로세스를 모두 죽이는 것과 같다
        old.proc.wait()
        return "SIGKILL"


def counts(run):
    """실행 기록의 what마다 몇 번 적혔는지 센다(처음 나온 순서대로)."""
    return dict(Counter(journal.whats(run)))


def send_and_wait_started(*calls, timeout=WAIT_SECONDS):
    """(작업, 초) 쌍을 모두 보내고, 모두 시작할 때까지 기다린다. 작업마다 만든 run을 돌려준다."""
    runs = []
    for task, seconds in calls:
        run = Journal.new_run()
        task.delay(run, seconds)
        runs.append(run)
    for run in runs:
        journal.wait_for(run, 1, what="시작", timeout=timeout)
    return runs


def warm_shutdown():
    old = start_worker()
    (short,) = send_and_wait_started((work, SHORT_WORK_SECONDS))
    show("SIGTERM 뒤에 워커는", deploy_stop(old), "유예 시간 안에 스스로 끝남")
    show(f"{SHORT_WORK_SECONDS}초 작업의 실행 기록", counts(short), {"시작": 1, "효과": 1, "끝": 1})


def killed_after_grace():
    old = start_worker()
    early, late = send_and_wait_started((work, WORK_SECONDS), (work_acks_late, WORK_SECONDS))
    show("SIGTERM 뒤에 워커는", deploy_stop(old), "SIGKILL")
    new = start_worker(env=SOFT_ON_SIGTERM)
    journal.wait_for(late, 1, what="끝", timeout=WAIT_SECONDS + WORK_SECONDS)
    never_within(SETTLE_SECONDS, lambda: counts(early)["시작"] > 1, "시작 시 ack 작업의 두 번째 실행")
    show(
        "시작 시 ack 작업(work)", counts(early), {"시작": 1, "효과": 1}, note="끝나지 못했고, 다시 실행되지 않았습니다"
    )
    show(
        "완료 후 ack 작업(work_acks_late)",
        counts(late),
        {"시작": 2, "효과": 1, "효과는 이미 있음": 1, "끝": 1},
        note="새 워커가 처음부터 다시 실행했습니다",
    )
    return new


def soft_shutdown(old):
    short, early, late = send_and_wait_started(
        (work, SHORT_WORK_SECONDS), (work, WORK_SECONDS), (work_acks_late, WORK_SECONDS)
    )
    show("SIGTERM 뒤에 워커는", deploy_stop(old), "유예 시간 안에 스스로 끝남")
    start_worker(env=SOFT_ON_SIGTERM)
    journal.wait_for(late, 1, what="끝", timeout=WAIT_SECONDS + WORK_SECONDS)
    never_within(SETTLE_SECONDS, lambda: counts(early)["시작"] > 1, "시작 시 ack 작업의 두 번째 실행")
    show(
        f"{SHORT_WORK_SECONDS}초 작업", counts(short), {"시작": 1, "효과": 1, "끝": 1}, note="기다리는 동안 끝났습니다"
    )
    show(
        f"{WORK_SECONDS}초, 시작 시 ack 작업",
        counts(early),
        {"시작": 1, "효과": 1},
        note="끊겼고, 다시 실행되지 않았습니다",
    )
    show(
        f"{WORK_SECONDS}초, 완료 후 ack 작업",
        counts(late),
        {"시작": 2, "효과": 1, "효과는 이미 있음": 1, "끝": 1},
        note="끊긴 뒤 메시지가 곧바로 돌아와 새 워커가 다시 실행했습니다",
    )


def calls():
    try:
        step(f"1. warm shutdown: SIGTERM을 받은 워커는 실행 중인 작업을 끝내고 멈춥니다 (유예 시간 {GRACE_SECONDS}초)")
        warm_shutdown()

        step(f"2. {WORK_SECONDS}초 작업이 유예 시간({GRACE_SECONDS}초)보다 길면 SIGKILL이 작업 도중에 옵니다")
        new = killed_after_grace()

        step(
            f"3. REMAP_SIGTERM=SIGQUIT 와 worker_soft_shutdown_timeout={SOFT_SHUTDOWN_SECONDS}: "
            "기다렸다가 끊고 되돌립니다"
        )
        soft_shutdown(new)
    finally:
        for worker in started:
            worker.stop()


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
