"""practice13 README: 워커를 멈추는 세 가지 방법(warm, soft, cold)과 그때 브로커(RabbitMQ)가 메시지를 어떻게 하는지.

테스트마다 워커를 스스로 띄우고 신호를 보낸다. 멈춘 뒤에는 새 워커를 띄우지 않고 큐에 돌아온 메시지를 센다.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from kombu import Connection

import global_config
from course import Journal, wait_until
from playground import PROJECT_ROOT, processes
from playground.broker import queue_counts
from playground.workers import Worker
from practice13 import tasks
from practice13.tasks import SHORT_WORK_SECONDS, SOFT_SHUTDOWN_SECONDS, WORK_SECONDS, journal, work, work_acks_late
from tests import WAIT_SECONDS

LESSON = "practice13"
QUEUE = tasks.app.conf.task_default_queue


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
    runs = []
    for task, seconds in calls:
        run = Journal.new_run()
        task.delay(run, seconds)
        runs.append(run)
    for run in runs:
        journal.wait_for(run, 1, what="시작", timeout=WAIT_SECONDS)
    return runs


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
    env = {"REMAP_SIGTERM": "SIGQUIT", **({"PRACTICE13_SOFT_SHUTDOWN_ON_IDLE": "1"} if on_idle else {})}
    worker = _started_worker(env=env)
    try:
        _signal_and_wait(worker, signal.SIGTERM)
    finally:
        worker.stop()
    assert "worker: Cold shutdown (MainProcess)" in worker.log
    assert ("Initiating Soft Shutdown" in worker.log) is on_idle


def test_soft_shutdown_waits_its_whole_timeout_even_when_the_tasks_finish_sooner():
    worker = _started_worker(env={"REMAP_SIGTERM": "SIGQUIT"})
    try:
        (short,) = _send((work, SHORT_WORK_SECONDS))
        signalled = time.monotonic()
        _signal_and_wait(worker, signal.SIGTERM)
        stopped = time.monotonic()
    finally:
        worker.stop()
    assert journal.whats(short) == ["시작", "효과", "끝"]
    # 작업은 1초 만에 끝났지만 워커는 soft shutdown 시간(2초)을 다 기다리고 멈췄다. 아래쪽 한계라 부하에도 참이다.
    assert stopped - signalled >= SOFT_SHUTDOWN_SECONDS


def test_ctrl_c_once_is_warm_and_twice_is_cold_and_the_cut_acks_late_task_comes_back():
    # README "직접 해 보기"의 명령. `celery call` 로 작업을 보내고, 워커에 Ctrl-C(SIGINT)를 두 번 보낸다.
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
        os.kill(worker.proc.pid, signal.SIGINT)
        worker.wait_for_log(
            r"worker: Hitting Ctrl\+C again will initiate cold shutdown, terminating all running tasks!", WAIT_SECONDS
        )
        worker.wait_for_log(r"worker: Warm shutdown \(MainProcess\)", WAIT_SECONDS)
        os.kill(worker.proc.pid, signal.SIGINT)
        worker.wait_for_log(r"worker: Hitting Ctrl\+C again will terminate all running tasks!", WAIT_SECONDS)
        worker.proc.wait(WAIT_SECONDS)
    finally:
        worker.stop()
    assert f"Initiating Soft Shutdown, terminating in {float(SOFT_SHUTDOWN_SECONDS)} seconds" in worker.log
    assert "끝" not in journal.whats(run)
    assert _queued_task_names() == [work_acks_late.name]


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


def _sh_worker(script: str) -> subprocess.Popen[str]:
    script += f" --hostname=compose-{uuid.uuid4().hex[:6]}@%h --without-mingle --without-gossip"
    return subprocess.Popen(
        ["sh", "-c", script], cwd=PROJECT_ROOT, env={**os.environ, "REMAP_SIGTERM": "SIGQUIT"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


@pytest.mark.parametrize("with_exec", [True, False], ids=["exec", "without_exec"])
def test_the_compose_command_hands_sigterm_to_the_worker_only_through_exec(with_exec):
    # docker는 SIGTERM을 컨테이너의 PID 1에 보낸다. compose의 명령은 sh -c 이므로 PID 1은 처음에 sh다.
    script = _compose_worker_command()
    if not with_exec:
        script = "true && " + script.removeprefix("exec ")
    worker = _sh_worker(script)
    lines = []
    try:
        wait_until(lambda: any(" ready." in line for line in lines) or lines.append(worker.stdout.readline()),
                   "워커의 ready 로그", WAIT_SECONDS)  # fmt: skip
        os.kill(worker.pid, signal.SIGTERM)  # PID 1에 보내는 것과 같다
        if with_exec:
            assert worker.wait(WAIT_SECONDS) == 0  # sh가 celery로 바뀌었다: 워커가 받고 스스로 멈췄다
            assert "worker: Cold shutdown (MainProcess)" in "".join(lines) + worker.stdout.read()
        else:
            assert worker.wait(WAIT_SECONDS) == -signal.SIGTERM  # sh가 죽었다
            # 워커는 SIGTERM을 받지 못하고 계속 실행된다. 컨테이너라면 PID 1이 끝나는 순간 모두 SIGKILL로 죽는다.
            assert processes.in_group(worker.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(WAIT_SECONDS)
        worker.stdout.close()
