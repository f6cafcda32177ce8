"""practice05 README: '실행' 절의 두 워커 명령을 글자 그대로 띄우고 call_tasks, `inspect active_queues`, 로그를 본다.

노드 이름도 README 그대로(worker-high@호스트, worker-low@호스트)이고 mingle과 gossip이 켜져 있다. 다른 테스트의
워커와 큐를 나눠 갖지 않도록 모듈을 따로 둔다.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest

from playground import PROJECT_ROOT
from playground.lessons import run_call_tasks
from practice05.tasks import build_report, send_alert
from tests import CALL_TIMEOUT_SECONDS, WAIT_SECONDS
from tests.readme import assert_samples_match, command_starting, lesson_readmes, parse, readme

LESSON = "practice05"
# 이 모듈의 테스트들은 README의 두 워커를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)
# 워커 로그 한 줄의 머리(Celery의 기본 형식): [시각: 수준/프로세스 이름]
LOG_LINE_HEAD = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: [A-Z]+/(?P<process>[^\]]+)\] ")


@pytest.fixture(scope="module")
def workers(readme_processes):
    """README의 두 워커 명령 그대로(conftest.py 의 readme_processes)를 소비하는 큐 이름으로."""
    high, low = readme_processes
    return {"high": high, "low": low}


def test_the_readme_starts_one_worker_per_queue_with_the_names_it_gives(workers):
    for queue, worker in workers.items():
        assert f"--queues={queue}" in worker.argv and f"--hostname=worker-{queue}@%h" in worker.argv
        assert worker.node.startswith(f"worker-{queue}@")


def test_call_tasks_with_the_two_workers_started_as_the_readme_says(workers):
    run = run_call_tasks("practice05", timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match("practice05", run.output)
    assert "!!" not in run.output


def test_the_readme_inspect_active_queues_shows_each_worker_with_its_own_queue_only(workers):
    command = parse(command_starting(readme(lesson_readmes("practice05")[0]), "celery -A practice05.tasks inspect"))
    out = subprocess.run(command.argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30, check=True).stdout
    # "->  노드: OK" 줄 아래에 그 노드가 소비하는 큐가 하나씩 "* {...}" 로 나온다.
    queues_of = {}
    for block in re.split(r"^->\s+", out, flags=re.MULTILINE)[1:]:
        node = block.split(":", 1)[0]
        queues_of[node] = [ast.literal_eval(queue)["name"] for queue in re.findall(r"^\s*\* (\{.*\})$", block, re.M)]
    assert queues_of == {workers["high"].node: ["high"], workers["low"].node: ["low"]}


def test_the_log_names_the_node_in_the_banner_and_the_ready_line_but_not_in_each_lines_head(workers):
    high = workers["high"]
    result = send_alert.delay("로그 보기")
    report = build_report.apply_async(queue="high")
    assert result.get(timeout=WAIT_SECONDS)["worker"] == high.node  # 작업은 self.request.hostname 으로 노드 이름을 안다
    report.get(timeout=WAIT_SECONDS)
    high.wait_for_log(rf"build_report\[{report.id}\] succeeded", WAIT_SECONDS)
    lines = high.log.splitlines()
    assert [line for line in lines if re.fullmatch(rf"\s*-+ {re.escape(high.node)} v\S+ \(.+\)", line)]  # 배너
    assert [line for line in lines if line.endswith(f"{high.node} ready.")]
    # 로그 줄마다 [시각: 수준/프로세스 이름] 로 시작한다. 프로세스 이름은 메인 프로세스나 풀 프로세스다.
    heads = [LOG_LINE_HEAD.match(line) for line in lines if line.startswith("[20")]
    assert heads and all(heads)
    assert all(re.fullmatch(r"MainProcess|ForkPoolWorker-\d+", head.group("process")) for head in heads)
    task_lines = [line for line in lines if result.id in line or report.id in line]
    assert len(task_lines) == 4  # 작업마다 received와 succeeded, 그 머리에도 노드 이름은 없다
    assert all(LOG_LINE_HEAD.match(line) for line in task_lines)
