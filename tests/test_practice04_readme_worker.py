"""practice04 README '실행' 절: README의 워커 명령을 글자 그대로 띄우고 call_tasks 를 돌린다.

글자 그대로라서 풀 프로세스는 CPU 수만큼이고, mingle과 gossip이 켜져 있고, 노드 이름은 celery@호스트다(다른 테스트의
워커는 풀 프로세스 둘, 새 노드 이름, mingle과 gossip 없이 뜬다). 다른 테스트의 워커와 큐를 나눠 갖지 않도록 모듈을
따로 둔다: 모듈 범위의 워커는 그 모듈이 끝날 때 멈춘다.
"""

from __future__ import annotations

import re

from playground.lessons import purge, run_call_tasks
from playground.workers import Worker, running
from tests.readme import assert_samples_match, block_commands, code_blocks, lesson_readmes, parse, readme

RUN_HEADING = "\n## 실행\n"  # 한국어판의 '실행' 절(영어판도 같은 명령이다: test_readme)


class ReadmeWorker(Worker):
    """README의 `celery -A … worker …` 명령 하나를 글자 그대로 띄운다. 준비를 기다리고 멈추는 법은 Worker 그대로다."""

    def __init__(self, lesson: str, command: str) -> None:
        self.command = parse(command)
        named = re.search(r"--hostname=([^@\s]+)@", command)
        super().__init__(lesson, name=named.group(1) if named else "celery", concurrency=None, env=self.command.env)

    @property
    def argv(self) -> list[str]:
        return list(self.command.argv)


def readme_workers(lesson: str) -> list[ReadmeWorker]:
    """그 실습 README의 '실행' 절 첫 bash 블록에 적힌 워커 명령들을, 아직 띄우지 않은 채로."""
    block = code_blocks(readme(lesson_readmes(lesson)[0]).split(RUN_HEADING, 1)[1], "bash")[0]
    return [ReadmeWorker(lesson, command) for command in block_commands(block) if " worker" in command]


def test_call_tasks_against_the_worker_started_as_the_readme_says():
    purge("practice04")
    (worker,) = readme_workers("practice04")
    assert worker.argv[-4:] == ["-A", "practice04.tasks", "worker", "--loglevel=info"]
    with running(worker):
        assert worker.node.startswith("celery@")
        run = run_call_tasks("practice04", timeout=90)
    assert run.returncode == 0, run.output
    assert_samples_match("practice04", run.output)
    assert "!!" not in run.output
