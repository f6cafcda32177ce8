"""practice13 README: 상태 확인(probe). 워커가 스스로 남기는 live/ready 파일과 `python -m practice13.probe`,
그리고 브로커를 거치는 `celery inspect ping` 이 멈춘 워커와 멈춘 브로커에서 각각 어떻게 답하는지.

브로커가 멈추는 경우는 .ci/services 의 두 번째 RabbitMQ 노드(spare)로 본다. 함께 도는 다른 테스트의 브로커(5673)는
건드리지 않는다.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.bin.control import inspect

from course import Journal, never_within, wait_until
from playground import PROJECT_ROOT
from playground.workers import Worker, running
from practice13.probe import DEFAULT_NODE, LIVE_MAX_AGE_SECONDS, LIVE_TOUCH_SECONDS
from practice13.tasks import journal, work
from tests import WAIT_SECONDS
from tests.test_practice12_workers import _spare, spare_broker  # noqa: F401 (fixture)

LESSON = "practice13"
EX_UNAVAILABLE = 69  # celery 명령이 브로커에 연결하지 못했을 때의 종료 코드
LONG_PING_TIMEOUT_SECONDS = 2.0  # 답이 곧 와도 다 기다리는지 보는 `inspect ping --timeout`
STILL_LIVE_SECONDS = LIVE_MAX_AGE_SECONDS - LIVE_TOUCH_SECONDS - 1.5  # 멈춘 직후 live probe가 아직 통과하는 시간
STUCK_SECONDS = 12  # solo 풀의 작업이 메인 스레드를 붙잡는 시간. 부하가 커도 probe와 ping이 그 안에 끝난다


def _probe(what: str, probe_dir=None, node: str | None = None) -> subprocess.CompletedProcess[str]:
    """배포 도구가 하듯 `python -m practice13.probe live|ready [노드 이름]` 을 실행한다.

    probe_dir가 없으면 PRACTICE13_PROBE_DIR 없이, 즉 기본 디렉터리로 실행한다.
    """
    env = {key: value for key, value in os.environ.items() if key != "PRACTICE13_PROBE_DIR"}
    if probe_dir is not None:
        env["PRACTICE13_PROBE_DIR"] = str(probe_dir)
    command = [sys.executable, "-m", "practice13.probe", what, *([node] if node else [])]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=WAIT_SECONDS)


def _passes(what: str, probe_dir, node: str) -> bool:
    return _probe(what, probe_dir, node).returncode == 0


def _inspect_ping(*args: str, env=None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "celery", "-A", "practice13.tasks", "inspect", "ping", *args]
    env = {**os.environ, **(env or {})}
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_a_frozen_worker_fails_the_liveness_probe_and_passes_it_again_when_it_resumes(tmp_path):
    worker = Worker(LESSON, env={"PRACTICE13_PROBE_DIR": str(tmp_path)})
    try:
        worker.start()
        worker.wait_ready()
        node = worker.node
        wait_until(lambda: _passes("ready", tmp_path, node), "ready probe 통과", WAIT_SECONDS)
        live = _probe("live", tmp_path, node)
        assert live.returncode == 0 and live.stdout.startswith("살아 있습니다."), live.stdout
        os.kill(worker.proc.pid, signal.SIGSTOP)  # 프로세스 전체가 멈춘 워커
        try:
            # 마지막 갱신이 LIVE_MAX_AGE_SECONDS 보다 오래되어야 실패한다. 멈춘 직후에는 아직 통과한다.
            never_within(STILL_LIVE_SECONDS, lambda: not _passes("live", tmp_path, node), "멈춘 직후의 live 실패")
            wait_until(
                lambda: not _passes("live", tmp_path, node), "live probe 실패", LIVE_MAX_AGE_SECONDS + WAIT_SECONDS
            )
            frozen = _probe("live", tmp_path, node)
            assert frozen.returncode == 1
            assert frozen.stdout.startswith(f"살아 있지 않습니다. 파일을 {LIVE_MAX_AGE_SECONDS}초 넘게"), frozen.stdout
            # ready 파일은 그대로 있지만, ready probe는 live probe도 통과해야 통과한다.
            assert (tmp_path / node / "ready").exists()
            ready = _probe("ready", tmp_path, node)
            assert ready.returncode == 1, ready.stdout
            assert ready.stdout.startswith("준비되지 않았습니다. 살아 있지 않습니다."), ready.stdout
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        wait_until(lambda: _passes("live", tmp_path, node), "다시 통과하는 live probe", WAIT_SECONDS)
        assert _passes("ready", tmp_path, node)
        # SIGKILL로 죽은 워커는 두 파일을 지우지 못한다. 남은 live 파일은 더 갱신되지 않는다(멈춘 워커와 같다).
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(WAIT_SECONDS)
        assert (tmp_path / node / "live").exists() and (tmp_path / node / "ready").exists()
        touched = (tmp_path / node / "live").stat().st_mtime
        never_within(LIVE_TOUCH_SECONDS * 1.5, lambda: (tmp_path / node / "live").stat().st_mtime != touched, "갱신")
    finally:
        worker.stop()


def test_a_stuck_main_thread_still_passes_the_liveness_probe(tmp_path):
    # solo 풀은 작업을 메인 스레드에서 실행한다. 작업이 도는 동안 이벤트 루프는 멈춰 ping에도 답하지 못한다.
    # live 파일을 갱신하는 스레드는 따로 돌므로 그동안에도 파일을 갱신하고, live probe는 통과한다.
    worker = Worker(LESSON, pool="solo", concurrency=1, env={"PRACTICE13_PROBE_DIR": str(tmp_path)})
    run = Journal.new_run()
    with running(worker):
        live = tmp_path / worker.node / "live"
        work.delay(run, STUCK_SECONDS)
        entries = journal.wait_for(run, 1, what="시작", timeout=WAIT_SECONDS)
        started = next(entry for entry in entries if entry.what == "시작")
        # 메인 스레드가 작업에 붙잡힌 뒤에도 파일은 갱신되었다.
        wait_until(lambda: live.stat().st_mtime > started.at + 1.5, "작업 도중의 live 파일 갱신", WAIT_SECONDS)
        assert _passes("live", tmp_path, worker.node)
        passed_at = time.time()
        ping = _inspect_ping(f"--destination={worker.node}", "--timeout=1")  # 메인 스레드가 답하지 못한다
        pinged_at = time.time()
        assert ping.returncode == EX_UNAVAILABLE
        assert "Error: No nodes replied within time constraint" in ping.stdout + ping.stderr
        entries = journal.wait_for(run, 1, what="끝", timeout=WAIT_SECONDS + STUCK_SECONDS)
        ended = next(entry for entry in entries if entry.what == "끝")
        # probe가 통과한 때에도, ping이 답을 기다리던 때에도 메인 스레드는 작업을 실행하고 있었다
        assert ended.at > pinged_at > passed_at


def test_by_hand_the_default_probes_and_inspect_ping_pass_and_each_node_keeps_its_own_files():
    # README "직접 해 보기: probe" 1단계의 명령 그대로. -n 없이 띄운 워커의 노드 이름은 celery@호스트 이름이고,
    # PRACTICE13_PROBE_DIR 이 없으면 파일은 /tmp/practice13-probe 아래 그 이름의 디렉터리에 있다.
    default, other = Worker(LESSON, name="celery"), Worker(LESSON)
    with running(default, other):
        assert default.node == DEFAULT_NODE
        wait_until(lambda: _probe("ready").returncode == 0, "기본 ready probe 통과", WAIT_SECONDS)
        live = _probe("live")
        assert live.returncode == 0, live.stdout
        assert live.stdout.rstrip().endswith(f"/tmp/practice13-probe/{DEFAULT_NODE}/live"), live.stdout
        ping = _inspect_ping()
        assert ping.returncode == 0 and f"{default.node}: OK" in ping.stdout and "pong" in ping.stdout
        # `inspect ping` 의 --timeout 기본값은 1초다(celery/bin/control.py). 답할 워커가 몇인지 모르므로 답이 와도
        # 끝까지 기다린다. 더 긴 --timeout 으로 보면 워커들이 곧바로 답했어도 그 시간을 다 기다린다(아래쪽 한계).
        (timeout,) = [param for param in inspect.params if param.name == "timeout"]
        assert timeout.default == 1.0
        started = time.monotonic()
        ping = _inspect_ping(f"--timeout={LONG_PING_TIMEOUT_SECONDS}")
        assert time.monotonic() - started >= LONG_PING_TIMEOUT_SECONDS
        assert ping.returncode == 0 and f"{other.node}: OK" in ping.stdout
        assert _probe("ready", node=other.node).returncode == 0
        other.stop()
        # 멈춘 워커는 자기 파일만 지운다. 같은 기계의 다른 워커의 probe는 그대로 통과한다.
        assert not (Path("/tmp/practice13-probe") / other.node / "live").exists()
        assert not (Path("/tmp/practice13-probe") / other.node / "ready").exists()
        assert _probe("live", node=other.node).returncode == 1
        assert _probe("ready", node=other.node).returncode == 1
        assert _probe("live").returncode == 0 and _probe("ready").returncode == 0


@pytest.mark.early
@pytest.mark.xdist_group("spare_broker")  # 예비 노드를 멈췄다 띄우는 테스트는 한 프로세스에서 차례로
def test_a_broker_outage_fails_readiness_and_inspect_ping_but_not_liveness(tmp_path, spare_broker):  # noqa: F811
    env = {"PRACTICE13_PROBE_DIR": str(tmp_path), "RABBITMQ_URL": spare_broker}
    worker = Worker(LESSON, env=env)
    try:
        worker.start()
        # 준비는 로그로 본다. 이 테스트 프로세스의 ping은 다른 브로커로 간다.
        node = worker.wait_for_log(r"(\S+@\S+) ready\.", WAIT_SECONDS).group(1)
        wait_until(lambda: _passes("ready", tmp_path, node), "ready probe 통과", WAIT_SECONDS)
        _spare("stop")
        worker.wait_for_log(r"Connection to broker lost", WAIT_SECONDS)
        wait_until(lambda: not _passes("ready", tmp_path, node), "ready probe 실패", WAIT_SECONDS)
        ready = _probe("ready", tmp_path, node)
        assert ready.returncode == 1 and ready.stdout.startswith("준비되지 않았습니다."), ready.stdout
        # 워커는 멀쩡하다: 브로커가 없는 동안에도 live probe는 통과한다.
        never_within(
            LIVE_MAX_AGE_SECONDS, lambda: not _passes("live", tmp_path, node), "브로커가 없는 동안의 live 실패"
        )
        ping = _inspect_ping(env={"RABBITMQ_URL": spare_broker})
        assert ping.returncode == EX_UNAVAILABLE
        assert "Error: Could not connect to the message broker." in ping.stdout + ping.stderr
        _spare("start")
        # 워커는 2, 4, 6 …초 간격으로 다시 연결해 본다. 다시 연결하면 컨슈머의 단계들이 다시 시작한다.
        wait_until(lambda: _passes("ready", tmp_path, node), "다시 통과하는 ready probe", WAIT_SECONDS * 2)
        assert _passes("live", tmp_path, node)
    finally:
        worker.stop()


def test_the_probe_command_names_its_two_probes():
    done = subprocess.run(
        [sys.executable, "-m", "practice13.probe"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 2
    assert "쓰는 법: python -m practice13.probe live|ready [노드 이름]" in done.stderr
