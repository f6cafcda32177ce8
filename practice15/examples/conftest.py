"""실제 워커 프로세스를 띄우는 fixture와 eager 모드를 켜는 fixture. 복사해서 practice15.tasks 를 자기 앱의 모듈로
바꿔 쓰면 된다.

워커는 `celery -A practice15.tasks worker` 를 실행하는 하위 프로세스다(prefork 풀). 준비되었는지는 ping으로
확인한다. 끝나면 띄운 프로세스의 PID에 SIGTERM을 보내고, STOP_SECONDS 안에 끝나지 않으면 그 프로세스 그룹에 SIGKILL을
보낸다. 브로커와 결과 백엔드의 주소는 global_config 가 환경 변수에서 읽는다. 테스트 프로세스마다 다른
주소(RabbitMQ 가상 호스트, Redis 데이터베이스 번호)를 주면 나란히 실행되는 테스트끼리 메시지가 섞이지 않는다.
워커도 같은 환경 변수를 물려받는다.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from practice15.tasks import app

READY_SECONDS = 30  # 워커가 ping에 답하기까지 기다리는 상한
STOP_SECONDS = 10  # SIGTERM 뒤에 워커가 스스로 끝나기를 기다리는 시간. 넘으면 SIGKILL을 보낸다


@pytest.fixture(scope="module")
def real_worker():
    """이 모듈의 테스트가 함께 쓰는 실제 워커. 큐를 비운 뒤 워커를 띄우고, 모듈이 끝나면 멈춘다."""
    app.control.purge()  # 지난 실행이 남긴 메시지를 지운다
    node = f"examples-{os.getpid()}@{socket.gethostname()}"
    command = [sys.executable, "-m", "celery", "-A", "practice15.tasks", "worker"]
    command += ["--pool=prefork", "--concurrency=2", f"--hostname={node}", "--loglevel=warning"]
    # 새 세션으로 띄우면 터미널의 Ctrl-C가 워커에 따로 가지 않는다. 멈추는 것은 이 fixture가 한다.
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not app.control.ping(destination=[node], timeout=0.5):
            if proc.poll() is not None:
                pytest.fail(f"worker exited with code {proc.returncode} before answering a ping")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {node} did not answer a ping within {READY_SECONDS} s")
        yield node
    finally:
        proc.send_signal(signal.SIGTERM)  # warm shutdown: 실행 중인 작업을 끝내고 멈춘다
        try:
            proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # 워커와 풀 프로세스를 모두 죽인다
            proc.wait()


@pytest.fixture
def always_eager():
    """이 테스트 동안만 app의 task_always_eager 를 켠다. delay() 와 apply_async() 가 eager로 실행된다."""
    app.conf.task_always_eager = True
    try:
        yield app
    finally:
        app.conf.task_always_eager = False
