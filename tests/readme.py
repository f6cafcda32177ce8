"""README(한국어판과 영어판)의 코드 블록과 명령을 읽는 도우미. 테스트가 README에 적힌 그대로를 돌리게 한다."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass

from playground.readme import (  # noqa: F401 (테스트가 여기서 함께 가져다 쓴다)
    PLACEHOLDER,
    README_FILES,
    block_commands,
    code_blocks,
    commands,
    lesson_readmes,
    readme,
    readme_pairs,
    run_commands,
    sample_mismatches,
    sample_outputs,
)
from playground.workers import Worker


@dataclass(frozen=True)
class Command:
    env: dict[str, str]
    argv: list[str]


def parse(command: str) -> Command:
    """'NAME=value celery -A …' → 환경 변수와 argv. celery와 uvicorn은 이 파이썬의 `python -m celery` 처럼 바꾼다."""
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if words[:1] in (["celery"], ["uvicorn"]):
        words = [sys.executable, "-m", *words]
    elif words[:2] == ["python", "-m"]:
        words = [sys.executable, *words[1:]]
    return Command(env, words)


def command_starting(text: str, prefix: str) -> str:
    """README의 명령 중 prefix로 시작하는 것 하나 (환경 변수 앞붙임은 건너뛰고 비교한다)."""
    matches = [c for c in commands(text) if re.sub(r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*", "", c).startswith(prefix)]
    assert len(matches) == 1, f"README에 {prefix!r} 로 시작하는 명령이 {len(matches)}개: {matches}"
    return matches[0]


def assert_samples_match(lesson: str, output: str) -> None:
    """그 실습 README(두 언어판)의 출력 예시가 모두 실제 call_tasks 출력과 맞는지 본다."""
    checked = 0
    for name in lesson_readmes(lesson):
        for sample in sample_outputs(readme(name)):
            problems = sample_mismatches(sample, output)
            assert problems == [], f"{name}: {problems}\n--- real output ---\n{output}"
            checked += 1
    assert checked >= 2, f"{lesson}: no sample output block in its READMEs"


class ReadmeWorker(Worker):
    """README의 `celery -A … worker …` 명령 하나를 글자 그대로 띄운다.

    기본 풀, CPU 수만큼의 풀 프로세스, mingle과 gossip이 켜진 채로 뜬다. 노드 이름은 명령의 --hostname, 없으면
    기본값 celery@호스트다. 준비를 기다리고 멈추는 법은 Worker 그대로다.
    """

    def __init__(self, lesson: str, command: str) -> None:
        self.command = parse(command)
        named = re.search(r"--hostname=([^@\s]+)@", command)
        super().__init__(lesson, name=named.group(1) if named else "celery", concurrency=None, env=self.command.env)

    @property
    def argv(self) -> list[str]:
        return list(self.command.argv)


def readme_workers(lesson: str) -> list[ReadmeWorker]:
    """그 실습 README의 '실행' 절 첫 bash 블록에 적힌 워커 명령들을, 아직 띄우지 않은 채로."""
    return [
        ReadmeWorker(lesson, command)
        for command in run_commands(readme(lesson_readmes(lesson)[0]))
        if " worker" in command
    ]
