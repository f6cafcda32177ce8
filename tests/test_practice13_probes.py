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

from course import never_within, wait_until
from playground import PROJECT_ROOT
from playground.workers import Worker
from practice13.probe import LIVE_MAX_AGE_SECONDS
from tests import WAIT_SECONDS
from tests.test_practice12_workers import _spare, spare_broker  # noqa: F401 (fixture)

LESSON = "practice13"
EX_UNAVAILABLE = 69  # celery 명령이 브로커에 연결하지 못했을 때의 종료 코드
PING_TIMEOUT_SECONDS = 1.0  # `celery inspect ping` 의 --timeout 기본값


def _probe(what: str, probe_dir) -> subprocess.CompletedProcess[str]:
    """배포 도구가 하듯 `python -m practice13.probe live|ready` 를 실행한다."""
    env = {**os.environ, "PRACTICE13_PROBE_DIR": str(probe_dir)}
    command = [sys.executable, "-m", "practice13.probe", what]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=WAIT_SECONDS)


def _passes(what: str, probe_dir) -> bool:
    return _probe(what, probe_dir).returncode == 0


def _inspect_ping(env=None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "celery", "-A", "practice13.tasks", "inspect", "ping"]
    env = {**os.environ, **(env or {})}
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_a_frozen_worker_fails_the_liveness_probe_and_passes_it_again_when_it_resumes(tmp_path):
    worker = Worker(LESSON, env={"PRACTICE13_PROBE_DIR": str(tmp_path)})
    try:
        worker.start()
        worker.wait_ready()
        wait_until(lambda: _passes("ready", tmp_path), "ready probe 통과", WAIT_SECONDS)
        live = _probe("live", tmp_path)
        assert live.returncode == 0 and live.stdout.startswith("살아 있습니다."), live.stdout
        # `inspect ping` 은 브로커를 거쳐 모든 워커에 묻고, 답이 왔어도 --timeout 을 다 기다린다(아래쪽 한계).
        started = time.monotonic()
        ping = _inspect_ping()
        assert time.monotonic() - started >= PING_TIMEOUT_SECONDS
        assert ping.returncode == 0 and f"{worker.node}: OK" in ping.stdout and "pong" in ping.stdout
        os.kill(worker.proc.pid, signal.SIGSTOP)  # 멈춘(교착에 빠진) 워커
        try:
            wait_until(lambda: not _passes("live", tmp_path), "live probe 실패", LIVE_MAX_AGE_SECONDS + WAIT_SECONDS)
            frozen = _probe("live", tmp_path)
            assert frozen.returncode == 1
            assert frozen.stdout.startswith(f"살아 있지 않습니다. 파일을 {LIVE_MAX_AGE_SECONDS}초 넘게"), frozen.stdout
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        wait_until(lambda: _passes("live", tmp_path), "다시 통과하는 live probe", WAIT_SECONDS)
    finally:
        worker.stop()
    # 멈춘 워커는 두 파일을 지운다.
    assert _probe("live", tmp_path).stdout.startswith("살아 있지 않습니다. 파일이 없습니다:")
    assert _probe("ready", tmp_path).returncode == 1


def test_a_broker_outage_fails_readiness_and_inspect_ping_but_not_liveness(tmp_path, spare_broker):  # noqa: F811
    env = {"PRACTICE13_PROBE_DIR": str(tmp_path), "RABBITMQ_URL": spare_broker}
    worker = Worker(LESSON, env=env)
    try:
        worker.start()
        # 준비는 로그로 본다. 이 테스트 프로세스의 ping은 다른 브로커로 간다.
        worker.wait_for_log(r"ready\.", WAIT_SECONDS)
        wait_until(lambda: _passes("ready", tmp_path), "ready probe 통과", WAIT_SECONDS)
        _spare("stop")
        worker.wait_for_log(r"Connection to broker lost", WAIT_SECONDS)
        wait_until(lambda: not _passes("ready", tmp_path), "ready probe 실패", WAIT_SECONDS)
        ready = _probe("ready", tmp_path)
        assert ready.returncode == 1 and ready.stdout.startswith("준비되지 않았습니다."), ready.stdout
        # 워커는 멀쩡하다: 브로커가 없는 동안에도 live probe는 통과한다.
        never_within(LIVE_MAX_AGE_SECONDS, lambda: not _passes("live", tmp_path), "브로커가 없는 동안의 live 실패")
        ping = _inspect_ping({"RABBITMQ_URL": spare_broker})
        assert ping.returncode == EX_UNAVAILABLE
        assert "Error: Could not connect to the message broker." in ping.stdout + ping.stderr
        _spare("start")
        # 워커는 2, 4, 6 …초 간격으로 다시 연결해 본다. 다시 연결하면 컨슈머의 단계들이 다시 시작한다.
        wait_until(lambda: _passes("ready", tmp_path), "다시 통과하는 ready probe", WAIT_SECONDS * 2)
        assert _passes("live", tmp_path)
    finally:
        worker.stop()


def test_the_probe_command_names_its_two_probes():
    done = subprocess.run(
        [sys.executable, "-m", "practice13.probe"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 2
    assert "쓰는 법: python -m practice13.probe live|ready" in done.stderr
