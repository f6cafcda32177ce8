"""practice15 README: 학습자가 복사해 쓸 예제 테스트(practice15/examples)를 README의 명령 그대로 실행한다.

eager와 실제 경로의 차이는 세 가지 예제 테스트 하나하나가 확인한다. 여기서는 그 예제가 모두 모여 통과하는지,
README에 옮긴 코드가 예제 파일에 그대로 있는지, 그리고 예제 밖에서 README와 예제의 주석이 말하는 것(플러그인이 저절로
켜지지 않는다, 스레드 워커에는 celery.ping 이 있어야 한다, heartbeat가 켜진 스레드 워커는 멈추는 데 10초쯤 걸리고
플러그인은 shutdown_timeout 이 지나도 멈추지 않은 워커에 RuntimeError를 낸다)을 확인한다.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from playground import PROJECT_ROOT
from playground.readme import code_blocks, commands
from playground.workers import running
from tests.readme import readme, readme_workers

LESSON = "practice15"
EXAMPLES = PROJECT_ROOT / "practice15" / "examples"
EXAMPLES_COMMAND = "uv run pytest practice15/examples"
EXAMPLES_TIMEOUT_SECONDS = 120
PLUGIN_TIMEOUT_SECONDS = 60
PLUGIN_SHUTDOWN_SECONDS = 10.0  # 플러그인의 스레드 워커가 멈추기를 기다리는 시간(start_worker 의 shutdown_timeout)
HEARTBEAT_GRACE_SECONDS = 20  # RuntimeError 뒤에 그 스레드가 끝나기를 더 기다리는 상한
SHORT_SHUTDOWN_SECONDS = 1.0  # 플러그인이 기다리는 시간을 이만큼 줄여, 멈추지 않은 워커에 RuntimeError가 나는 것을 본다
# heartbeat가 켜진 스레드 워커가 멈추는 데 드는 시간의 아래 한계. 재어 보면 10초쯤이다(10.01~10.02초, 부하가 큰
# 전체 실행에서는 10초 안에 멈추기도 했다). 플러그인이 기다리는 10초와 거의 같아서 RuntimeError는 날 때도 있고
# 안 날 때도 있다.
HEARTBEAT_STOP_SECONDS = 9


def _pytest(*args: str, cwd: Path = PROJECT_ROOT, timeout: float = EXAMPLES_TIMEOUT_SECONDS, env=None):
    """이 가상 환경의 pytest (`uv run pytest` 가 실행하는 것과 같다). env는 바꿀 환경 변수."""
    pytest_bin = Path(sys.executable).with_name("pytest")
    return subprocess.run(
        [str(pytest_bin), "-p", "no:cacheprovider", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _example_tests() -> set[str]:
    """예제 모듈에 적힌 test_ 함수 이름들."""
    names = set()
    for path in EXAMPLES.glob("test_*.py"):
        tree = ast.parse(path.read_text())
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        names |= {function.name for function in functions if function.name.startswith("test_")}
    return names


@pytest.mark.early  # 예제 테스트 32개를 실제 워커와 함께 실행한다(15초쯤)
def test_the_readme_command_runs_every_example_test_and_all_pass(tmp_path):
    for path in ("practice15/README.md", "practice15/README.en.md"):
        assert EXAMPLES_COMMAND in commands(readme(path)), path
    junit = tmp_path / "examples.xml"
    done = _pytest(EXAMPLES_COMMAND.split(" ", 3)[3], f"--junitxml={junit}")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {case.get("name"): [child.tag for child in case] for case in cases}
    assert {name.split("[")[0] for name in outcomes} == _example_tests()  # 적힌 테스트가 모두 모였다
    assert all(not children or children == ["system-out"] for children in outcomes.values()), outcomes  # 모두 통과
    # README가 말하는 마지막 줄의 수: "테스트 32개가 모두 통과하고, 마지막 줄에 `32 passed` 가 나옵니다."
    said = {int(n) for path in ("practice15/README.md", "practice15/README.en.md")
            for n in re.findall(r"`(\d+) passed`", readme(path))}  # fmt: skip
    assert said == {len(outcomes)}
    assert re.search(rf"^=* {len(outcomes)} passed", done.stdout, re.MULTILINE), done.stdout


def test_the_plain_function_tests_pass_without_a_broker_or_a_result_backend():
    # README: "`test_plain_function.py` 의 테스트는 브로커와 결과 백엔드가 없어도 통과합니다." 아무도 듣지 않는
    # 포트를 준다.
    nobody = {"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1//", "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = _pytest("-q", str(EXAMPLES / "test_plain_function.py"), timeout=PLUGIN_TIMEOUT_SECONDS, env=nobody)
    assert done.returncode == 0, done.stdout
    assert re.search(r"^\d+ passed", done.stdout, re.MULTILINE), done.stdout


@pytest.mark.parametrize("path", ["practice15/README.md", "practice15/README.en.md"])
def test_every_python_excerpt_in_the_readme_is_in_an_example_file(path):
    # README가 옮긴 코드는 예제 파일의 한 부분 그대로다. 예제를 고치고 README를 잊으면 여기서 실패한다.
    files = {f.name: f.read_text() for f in EXAMPLES.glob("*.py")}
    blocks = code_blocks(readme(path), "python")
    assert blocks
    for block in blocks:
        assert any(block in text for text in files.values()), block


def test_celery_s_pytest_plugin_is_not_loaded_by_itself(tmp_path):
    # Celery 5의 배포에는 pytest 플러그인 진입점이 없다(pytest11). 모듈이 pytest_plugins 로 켜야 fixture가 생긴다.
    test = tmp_path / "test_plugin.py"
    test.write_text("def test_needs_the_plugin(celery_app):\n    pass\n")
    done = _pytest(str(test), "--rootdir", str(tmp_path), cwd=tmp_path, timeout=PLUGIN_TIMEOUT_SECONDS)
    assert done.returncode == 1 and "fixture 'celery_app' not found" in done.stdout, done.stdout
    # 켜면 fixture가 생긴다. 플러그인의 celery_app 은 celery_config 로 새로 만든 앱이다. 기본 설정은 메모리 안의
    # 브로커와 결과 백엔드, heartbeat 0이다. @app.task 로 만든 작업은 새 앱에도 등록되지만, delay() 는 작업의 앱으로
    # 보낸다.
    test.write_text(
        textwrap.dedent(
            """
            pytest_plugins = ("celery.contrib.pytest",)

            from practice15 import tasks


            def test_needs_the_plugin(celery_app, celery_worker_pool):
                assert celery_app is not tasks.app and tasks.add.app is tasks.app
                conf = celery_app.conf
                assert (conf.broker_url, conf.result_backend) == ("memory://", "cache+memory://")
                assert conf.broker_heartbeat == 0
                assert "practice15.tasks.add" in celery_app.tasks
                assert celery_worker_pool == "solo"
            """
        )
    )
    here = {"PYTHONPATH": str(PROJECT_ROOT)}
    done = _pytest(str(test), "--rootdir", str(tmp_path), cwd=tmp_path, timeout=PLUGIN_TIMEOUT_SECONDS, env=here)
    assert done.returncode == 0, done.stdout


def test_without_celery_includes_the_thread_worker_does_not_start(tmp_path):
    # README: "이 워커는 시작할 때 celery.ping 작업으로 자기가 준비되었는지 확인합니다. 그래서 예제는 그 작업을
    # 등록하는 모듈을 celery_includes 로 넘깁니다." 넘기지 않으면 워커가 시작하기 전에 멈춘다.
    test = tmp_path / "test_no_includes.py"
    test.write_text(
        textwrap.dedent(
            """
            import pytest

            from practice15 import tasks

            pytest_plugins = ("celery.contrib.pytest",)


            @pytest.fixture
            def celery_app():
                tasks.app.conf.broker_heartbeat = 0
                yield tasks.app


            def test_needs_a_worker(celery_worker):
                pass
            """
        )
    )
    here = {"PYTHONPATH": str(PROJECT_ROOT)}
    done = _pytest(str(test), "--rootdir", str(tmp_path), cwd=tmp_path, timeout=PLUGIN_TIMEOUT_SECONDS, env=here)
    assert done.returncode == 1 and "assert 'celery.ping' in app.tasks" in done.stdout, done.stdout


def _thread_worker_stop(heartbeat: int, shutdown_timeout: float) -> tuple[str, bool, float]:
    """플러그인의 celery_worker 처럼 start_worker 로 스레드 워커를 띄우고 멈춘다.

    새 프로세스에서 한다. 워커의 상태는 프로세스 전역이라, 한 프로세스에서 두 번째로 띄운 워커는 다르게 멈춘다
    (heartbeat 0 다음에 띄운 120의 워커가 0.01초 만에 멈춘 적이 있다). 돌려주는 것: 멈출 때 난 예외의 이름이나 "-",
    그 뒤에도 스레드가 살아 있는지, 멈추기 시작해 스레드가 끝나기까지의 초.
    """
    code = textwrap.dedent(
        f"""
        import threading
        import time
        import celery.contrib.testing.tasks  # celery.ping (스레드 워커가 시작할 때 확인하는 작업)
        from celery.contrib.testing.worker import start_worker
        from practice15 import tasks
        tasks.app.conf.broker_heartbeat = {heartbeat}
        worker = start_worker(tasks.app, shutdown_timeout={shutdown_timeout})
        controller = worker.__enter__()
        thread = next(t for t in threading.enumerate() if getattr(t, "_target", None) == controller.start)
        assert tasks.add.delay(1, 2).get(timeout=10) == 3
        started = time.monotonic()
        try:
            worker.__exit__(None, None, None)
            raised = "-"
        except RuntimeError as error:
            raised = type(error).__name__
        thread.join({HEARTBEAT_GRACE_SECONDS})
        print(raised, thread.is_alive(), time.monotonic() - started)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=EXAMPLES_TIMEOUT_SECONDS
    )
    assert done.returncode == 0, done.stderr
    raised, alive, seconds = done.stdout.split()
    return raised, alive == "True", float(seconds)


@pytest.mark.early  # 멈추는 데 10초쯤 드는 워커를 재는 테스트
def test_with_the_default_heartbeat_the_thread_worker_takes_about_ten_seconds_to_stop():
    # 예제(test_celery_pytest.py)가 broker_heartbeat 를 0으로 끄는 까닭. README: "Celery의 기본값(120초)대로 켜 두면
    # 이 스레드 워커는 멈추는 데 10초쯤 걸립니다. 플러그인은 10초(shutdown_timeout)까지만 기다리고, 그때도 워커가
    # 멈추지 않았으면 RuntimeError를 냅니다."
    assert inspect.signature(start_worker).parameters["shutdown_timeout"].default == PLUGIN_SHUTDOWN_SECONDS
    raised, alive, seconds = _thread_worker_stop(0, PLUGIN_SHUTDOWN_SECONDS)
    assert (raised, alive) == ("-", False) and seconds < HEARTBEAT_STOP_SECONDS
    # 기다리는 시간을 1초로 줄이면 멈추지 않은 워커에 RuntimeError가 난다. 스레드는 그 뒤에 끝난다: 10초쯤.
    raised, alive, seconds = _thread_worker_stop(120, SHORT_SHUTDOWN_SECONDS)
    assert (raised, alive) == ("RuntimeError", False) and seconds >= HEARTBEAT_STOP_SECONDS


def test_a_lesson_worker_left_running_takes_the_thread_workers_ping():
    # README의 직접 해 보기: 터미널 1의 워커(README의 명령)가 돌고 있으면 그 워커가 celery.ping 을 가져간다.
    with running(*readme_workers(LESSON)) as (lesson_worker,):
        done = _pytest("-q", str(EXAMPLES / "test_celery_pytest.py"))
        lesson_worker.wait_for_log(r"Received unregistered task of type 'celery\.ping'", PLUGIN_TIMEOUT_SECONDS)
    assert done.returncode == 1, done.stdout
    assert "NotRegistered: 'celery.ping'" in done.stdout, done.stdout
