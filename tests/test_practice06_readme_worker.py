"""practice06 README: '실행' 절의 워커 명령을 글자 그대로 띄우고, call_tasks 와 README의 celery 명령 둘을 돌린다.

노드 이름은 celery@호스트, 풀 프로세스는 CPU 수만큼, mingle과 gossip이 켜져 있다. 다른 테스트의 워커와 큐를
나눠 갖지 않도록 모듈을 따로 둔다.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from playground import PROJECT_ROOT
from playground.lessons import run_call_tasks
from practice06.tasks import app
from tests import CALL_TIMEOUT_SECONDS, WAIT_SECONDS
from tests.readme import assert_samples_match, command_starting, lesson_readmes, parse, readme

LESSON = "practice06"
# 이 모듈의 테스트들은 README의 워커 하나를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)
README_KO = readme(lesson_readmes("practice06")[0])


@pytest.fixture(scope="module")
def worker(readme_processes):
    """README의 워커 명령 그대로 띄운 워커 하나(conftest.py 의 readme_processes)."""
    (started,) = readme_processes
    return started


def run_readme_command(prefix: str) -> str:
    command = parse(command_starting(README_KO, prefix))
    return subprocess.run(command.argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30, check=True).stdout


def test_call_tasks_against_the_worker_started_as_the_readme_says(worker):
    assert worker.node.startswith("celery@")
    run = run_call_tasks("practice06", timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match("practice06", run.output)
    assert "!!" not in run.output


def test_the_readme_inspect_registered_lists_the_names_the_running_worker_knows(worker):
    out = run_readme_command("celery -A practice06.tasks inspect registered")
    assert f"->  {worker.node}: OK" in out
    assert "* email.send_welcome" in out
    assert "* practice06.tasks.count_words" in out


def test_the_readme_celery_call_prints_the_task_id_and_the_worker_runs_it(worker):
    out = run_readme_command("celery -A practice06.tasks call email.send_welcome").strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", out)
    assert app.AsyncResult(out).get(timeout=WAIT_SECONDS) == "환영 메일을 보냈습니다 (사용자 42)"
