"""practice13 README: 워커를 멈추는 세 가지 방법(warm, soft, cold)과 그때 브로커(RabbitMQ)가 메시지를 어떻게 하는지.

테스트마다 워커를 스스로 띄우고 신호를 보낸다. 멈춘 뒤에는 새 워커를 띄우지 않고 큐에 돌아온 메시지를 센다.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from kombu import Connection

import global_config
from course import Journal, never_within, wait_until
from playground import PROJECT_ROOT, processes
from playground.broker import queue_counts
from playground.workers import Worker
from practice13 import tasks
from practice13.call_tasks import send_and_wait_started
from practice13.tasks import SHORT_WORK_SECONDS, SOFT_SHUTDOWN_SECONDS, WORK_SECONDS, journal, work, work_acks_late
from tests import WAIT_SECONDS

LESSON = "practice13"
QUEUE = tasks.app.conf.task_default_queue
LONG_SOFT_SECONDS = 5  # 작업(1초)보다 훨씬 긴 soft shutdown 시간
PID1_IGNORES_SECONDS = 1  # PID 1인 sh가 SIGTERM을 받고도 살아 있는지 지켜보는 시간


@pytest.fixture(autouse=True)
def empty_queue():
    tasks.app.control.purge()
    yield
    tasks.app.control.purge()


def _started_worker(env=None) -> Worker:
    worker = Worker(LESSON, concurrency=3, env=env)
    worker.start()
    worker.wait_ready()
    return worker


def _send(*calls) -> list[str]:
    return send_and_wait_started(*calls, timeout=WAIT_SECONDS)


def _queued_task_names() -> list[str]:
    """큐에 있는 메시지들의 작업 이름. 꺼내 본 뒤 모두 되돌린다."""
    names, messages = [], []
    with Connection(global_config.RABBITMQ_URL) as conn:
        channel = conn.channel()
        while (message := channel.basic_get(QUEUE, no_ack=False)) is not None:
            names.append(message.headers["task"])
            messages.append(message)
        for message in messages:
            channel.basic_reject(message.delivery_tag, requeue=True)
    return sorted(names)


def _signal_and_wait(worker: Worker, sig: int) -> int:
    os.kill(worker.proc.pid, sig)
    worker._wake()  # 쉬는 이벤트 루프를 곧바로 깨운다. 신호의 뜻은 바뀌지 않는다
    code = worker.proc.wait(WAIT_SECONDS + WORK_SECONDS)
    worker.stop()
    return code


def test_sigterm_is_a_warm_shutdown_that_waits_for_running_tasks_and_leaves_nothing_in_the_queue():
    worker = _started_worker()
    try:
        early, late = _send((work, WORK_SECONDS), (work_acks_late, WORK_SECONDS))
        _signal_and_wait(worker, signal.SIGTERM)
    finally:
        worker.stop()
    assert "worker: Warm shutdown (MainProcess)" in worker.log
    assert "Initiating Soft Shutdown" not in worker.log  # worker_soft_shutdown_timeout 은 warm shutdown에 쓰이지 않는다
    for run in (early, late):
        assert journal.whats(run) == ["시작", "효과", "끝"]  # 멈추기 전에 끝까지 실행했다
    assert queue_counts(QUEUE) == (0, 0)


def test_sigquit_is_a_cold_shutdown_that_cuts_running_tasks_and_rabbitmq_takes_back_only_the_acks_late_one():
    worker = _started_worker(env={"PRACTICE13_SOFT_SHUTDOWN_SECONDS": "0"})
    try:
        early, late = _send((work, WORK_SECONDS), (work_acks_late, WORK_SECONDS))
        _signal_and_wait(worker, signal.SIGQUIT)
    finally:
        worker.stop()
    assert "worker: Cold shutdown (MainProcess)" in worker.log
    assert "Initiating Soft Shutdown" not in worker.log  # worker_soft_shutdown_timeout=0: 곧바로 끊는다
    for run in (early, late):
        assert "끝" not in journal.whats(run)
    # 시작 시 ack 작업의 메시지는 이미 지워졌다. 완료 후 ack 작업의 메시지는 큐로 돌아왔다.
    assert _queued_task_names() == [work_acks_late.name]


def test_remap_sigterm_makes_sigterm_a_soft_shutdown_that_lets_short_tasks_finish_then_cuts_the_rest():
    worker = _started_worker(env={"REMAP_SIGTERM": "SIGQUIT"})
    try:
        short, early, late = _send((work, SHORT_WORK_SECONDS), (work, WORK_SECONDS), (work_acks_late, WORK_SECONDS))
        _signal_and_wait(worker, signal.SIGTERM)
    finally:
        worker.stop()
    assert "worker: Cold shutdown (MainProcess)" in worker.log
    assert f"Initiating Soft Shutdown, terminating in {float(SOFT_SHUTDOWN_SECONDS)} seconds" in worker.log
    assert journal.whats(short) == ["시작", "효과", "끝"]  # soft shutdown이 기다리는 동안 끝났다
    assert Counter(journal.whats(early)) == {"시작": 1, "효과": 1}
    assert Counter(journal.whats(late)) == {"시작": 1, "효과": 1}
    assert _queued_task_names() == [work_acks_late.name]


@pytest.mark.parametrize("on_idle", [False, True], ids=["default", "on_idle"])
def test_soft_shutdown_waits_on_an_idle_worker_only_with_soft_shutdown_on_idle(on_idle):
    env = {"REMAP_SIGTERM": "SIGQUIT", "PRACTICE13_SOFT_SHUTDOWN_SECONDS": "0.5"}
    if on_idle:
        env["PRACTICE13_SOFT_SHUTDOWN_ON_IDLE"] = "1"
    worker = _started_worker(env=env)
    try:
        _signal_and_wait(worker, signal.SIGTERM)
    finally:
        worker.stop()
    assert "worker: Cold shutdown (MainProcess)" in worker.log
    assert ("Initiating Soft Shutdown, terminating in 0.5 seconds" in worker.log) is on_idle


def test_soft_shutdown_waits_its_whole_timeout_even_when_the_tasks_finish_sooner():
    # soft shutdown 시간을 5초로 둔다. 작업은 1초 안에 끝난다. 작업이 끝나자마자 멈추는 워커라면 멈추는 데 드는
    # 1.6초쯤을 더해도 3초가 안 걸린다.
    env = {"REMAP_SIGTERM": "SIGQUIT", "PRACTICE13_SOFT_SHUTDOWN_SECONDS": str(LONG_SOFT_SECONDS)}
    worker = _started_worker(env=env)
    try:
        (short,) = _send((work, SHORT_WORK_SECONDS))
        signalled = time.time()
        _signal_and_wait(worker, signal.SIGTERM)
        stopped = time.time()
    finally:
        worker.stop()
    assert f"Initiating Soft Shutdown, terminating in {float(LONG_SOFT_SECONDS)} seconds" in worker.log
    ended = next(entry.at for entry in journal.read(short) if entry.what == "끝")
    assert ended - signalled <= SHORT_WORK_SECONDS + 1  # 작업은 신호 뒤 곧 끝났다
    # 그래도 워커는 soft shutdown 시간을 다 기다리고 멈췄다. 아래쪽 한계라 부하에도 참이다.
    assert stopped - signalled >= LONG_SOFT_SECONDS


def test_ctrl_c_once_is_warm_and_twice_is_cold_and_the_cut_acks_late_task_comes_back():
    # README "직접 해 보기"의 명령. `celery call` 로 작업을 보내고, 워커에 Ctrl-C(SIGINT)를 두 번 보낸다.
    # 터미널의 Ctrl-C는 앞에서 실행 중인 프로세스 그룹 전체(메인 프로세스와 풀 프로세스)에 간다.
    worker = _started_worker()
    run = Journal.new_run()
    try:
        sent = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "practice13.tasks", "call", "practice13.tasks.work_acks_late",
             f"--args={json.dumps([run, WORK_SECONDS])}"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=WAIT_SECONDS,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        journal.wait_for(run, 1, what="시작", timeout=WAIT_SECONDS)
        os.killpg(worker.proc.pid, signal.SIGINT)
        worker.wait_for_log(
            r"worker: Hitting Ctrl\+C again will initiate cold shutdown, terminating all running tasks!", WAIT_SECONDS
        )
        worker.wait_for_log(r"worker: Warm shutdown \(MainProcess\)", WAIT_SECONDS)
        # 첫 Ctrl-C 뒤에도 작업은 이어진다(시작하고 1초 뒤의 효과). 워커는 그 작업을 기다린다.
        journal.wait_for(run, 1, what="효과", timeout=WAIT_SECONDS)
        assert worker.proc.poll() is None
        os.killpg(worker.proc.pid, signal.SIGINT)
        worker.wait_for_log(r"worker: Hitting Ctrl\+C again will terminate all running tasks!", WAIT_SECONDS)
        try:
            worker.proc.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            # 전체 실행에서 한 번, 두 번째 Ctrl-C 뒤 20초가 지나도 워커가 끝나지 않았다. 그때의 워커 로그를 남긴다.
            pytest.fail(f"the worker did not stop within {WAIT_SECONDS} s of the second Ctrl-C:\n{worker.log_tail(40)}")
    finally:
        worker.stop()
    assert f"Initiating Soft Shutdown, terminating in {float(SOFT_SHUTDOWN_SECONDS)} seconds" in worker.log
    assert "끝" not in journal.whats(run)
    assert _queued_task_names() == [work_acks_late.name]
    # 워커를 다시 띄우면 끊긴 작업이 처음부터 다시 실행된다. 확인한 뒤에는 곧바로 끊고(cold shutdown) 되돌린다.
    again = _started_worker(env={"PRACTICE13_SOFT_SHUTDOWN_SECONDS": "0"})
    try:
        journal.wait_for(run, 2, what="시작", timeout=WAIT_SECONDS)
    finally:
        _signal_and_wait(again, signal.SIGQUIT)


def test_sigkill_after_the_grace_period_loses_an_early_ack_task_and_rabbitmq_takes_back_the_acks_late_one():
    worker = _started_worker()
    try:
        early, late = _send((work, WORK_SECONDS), (work_acks_late, WORK_SECONDS))
        os.kill(worker.proc.pid, signal.SIGTERM)
        worker.wait_for_log(r"worker: Warm shutdown \(MainProcess\)", WAIT_SECONDS)
        os.killpg(worker.proc.pid, signal.SIGKILL)  # 유예 시간이 지난 컨테이너처럼 모두에
        worker.proc.wait(WAIT_SECONDS)
    finally:
        worker.stop()
    for run in (early, late):
        assert "끝" not in journal.whats(run)
    # RabbitMQ는 끊긴 연결이 ack하지 않은 메시지를 큐로 되돌린다. 연결이 끊긴 것을 브로커가 알아채면 곧바로다.
    wait_until(lambda: _queued_task_names() == [work_acks_late.name], "큐로 돌아온 완료 후 ack 작업", WAIT_SECONDS)
    assert _queued_task_names() == [work_acks_late.name]


def _compose_worker_command() -> str:
    """docker-compose.yml 의 worker 명령에서, 설치 단계를 빼고 이 기계의 celery로 바꾼 sh 스크립트."""
    import yaml

    command = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]["worker"]["command"]
    script = re.fullmatch(r'sh -c "(.*)"', command)[1]
    _setup, _, worker = script.rpartition(" && ")
    assert worker.startswith("exec /venv/bin/celery ")
    return worker.replace("/venv/bin/celery", f"{sys.executable} -m celery")


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextlib.contextmanager
def _as_pid_1(script: str):
    """`sh -c script` 를 새 PID 네임스페이스의 PID 1로 실행한다. 컨테이너 안의 PID 1과 같다.

    (unshare 프로세스, 네임스페이스 밖에서 본 sh의 PID, 출력을 모으는 목록)을 준다. 나올 때 그 PID 1을
    SIGKILL로 죽인다. PID 1이 죽으면 커널이 네임스페이스의 다른 프로세스도 모두 죽인다.
    """
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a new PID namespace (unshare --pid) needs root and util-linux's unshare")
    script += f" --hostname=compose-{uuid.uuid4().hex[:6]}@%h --without-mingle --without-gossip"
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "sh", "-c", script], cwd=PROJECT_ROOT,
        env={**os.environ, "REMAP_SIGTERM": "SIGQUIT"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: " ready." in "".join(lines), "워커의 ready 로그", WAIT_SECONDS)
        (pid_1,) = _children(proc.pid)  # unshare가 fork한 자식이 네임스페이스의 PID 1이다
        yield proc, pid_1, lines
    finally:
        for pid in _children(proc.pid) if proc.poll() is None else ():
            os.kill(pid, signal.SIGKILL)
        proc.wait(WAIT_SECONDS)
        reader.join(WAIT_SECONDS)
        proc.stdout.close()


def test_the_compose_command_with_exec_makes_the_worker_pid_1_and_it_gets_the_sigterm():
    # docker는 SIGTERM을 컨테이너의 PID 1에 보낸다. `exec` 가 있으면 sh가 celery로 바뀌어 워커가 PID 1이 된다.
    with _as_pid_1(_compose_worker_command()) as (proc, pid_1, lines):
        assert "celery" in processes.command_line(pid_1)
        os.kill(pid_1, signal.SIGTERM)
        assert proc.wait(WAIT_SECONDS) == 0  # 워커가 받고 스스로 멈췄다(REMAP_SIGTERM=SIGQUIT: cold shutdown)
    assert "worker: Cold shutdown (MainProcess)" in "".join(lines)


def test_the_compose_command_without_exec_leaves_sh_as_pid_1_which_ignores_sigterm():
    # `exec` 가 없으면 PID 1은 sh다. 네임스페이스 밖에서 온 신호는 PID 1이 처리기를 둔 것만 전달된다
    # (pid_namespaces(7)). sh는 SIGTERM 처리기가 없으므로 신호는 버려지고, 워커에도 가지 않는다.
    script = "true && " + _compose_worker_command().removeprefix("exec ")
    with _as_pid_1(script) as (proc, pid_1, lines):
        assert processes.command_line(pid_1).startswith("sh -c true && ")
        workers = processes.descendants(pid_1)
        assert workers  # sh의 자식인 워커(메인 프로세스와 풀 프로세스)
        os.kill(pid_1, signal.SIGTERM)
        never_within(
            PID1_IGNORES_SECONDS,
            lambda: not processes.alive(pid_1) or "shutdown" in "".join(lines),
            "SIGTERM으로 끝나는 sh나 멈추기 시작하는 워커",
        )
        # 유예 시간이 지나면 docker는 SIGKILL을 보낸다. PID 1이 죽으면 워커도 함께 SIGKILL로 죽는다.
        os.kill(pid_1, signal.SIGKILL)
        proc.wait(WAIT_SECONDS)
        wait_until(lambda: not any(processes.alive(pid) for pid in workers), "함께 죽은 워커", WAIT_SECONDS)
    assert "shutdown" not in "".join(lines)  # 워커는 멈추는 절차를 밟지 못했다
