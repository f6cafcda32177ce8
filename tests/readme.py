"""README(한국어판과 영어판)의 코드 블록과 명령을 읽는 도우미. 테스트가 README에 적힌 그대로를 돌리게 한다."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass

from playground import PROJECT_ROOT
from playground.workers import Worker

README_FILES = ("README.md", "README.en.md")  # 최상위 README: 강좌의 첫 화면과 실습 목록
# 첫날에는 필요 없는 강좌 전체의 이야기: docs/ 의 쪽마다 (한국어판, 영어판)
DOC_PAIRS = tuple((f"docs/{name}.md", f"docs/{name}.en.md") for name in ("runner", "services", "flower", "testing"))


def lesson_readmes(lesson: str) -> tuple[str, str]:
    """그 실습의 전체 글: 한국어판과 영어판."""
    return (f"{lesson}/README.md", f"{lesson}/README.en.md")


def readme_pairs(lessons: list[str]) -> list[tuple[str, str]]:
    """서로 같은 내용이어야 하는 (한국어판, 영어판) 쌍들: 최상위 README, docs/ 의 쪽들, 그리고 실습마다."""
    return [README_FILES, *DOC_PAIRS, *(lesson_readmes(lesson) for lesson in lessons)]


def readme(name: str = "README.md") -> str:
    return (PROJECT_ROOT / name).read_text()


def code_blocks(text: str, language: str = "bash") -> list[str]:
    """```language 로 시작하는 코드 블록들의 내용 (목록 안에서 들여 쓴 블록도)."""
    pattern = rf"^(?P<indent>[ \t]*)```{language}\n(?P<body>.*?)^(?P=indent)```"
    blocks = []
    for match in re.finditer(pattern, text, re.MULTILINE | re.DOTALL):
        indent = len(match.group("indent"))
        blocks.append("".join(line[indent:] for line in match.group("body").splitlines(keepends=True)))
    return blocks


def commands(text: str) -> list[str]:
    """bash 코드 블록의 명령들: 주석과 빈 줄을 빼고, 줄 끝 \\ 로 이어진 줄은 하나로 잇는다."""
    return [command for block in code_blocks(text, "bash") for command in block_commands(block)]


def block_commands(block: str) -> list[str]:
    """코드 블록 하나의 명령들."""
    found = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            found.append(line)
    return found


@dataclass(frozen=True)
class Command:
    env: dict[str, str]
    argv: list[str]


def parse(command: str) -> Command:
    """'NAME=value celery -A …' → 환경 변수와 argv. celery는 이 파이썬의 `python -m celery` 로 바꾼다."""
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if words[:1] == ["celery"]:
        words = [sys.executable, "-m", "celery", *words[1:]]
    elif words[:2] == ["python", "-m"]:
        words = [sys.executable, *words[1:]]
    return Command(env, words)


def command_starting(text: str, prefix: str) -> str:
    """README의 명령 중 prefix로 시작하는 것 하나 (환경 변수 앞붙임은 건너뛰고 비교한다)."""
    matches = [c for c in commands(text) if re.sub(r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*", "", c).startswith(prefix)]
    assert len(matches) == 1, f"README에 {prefix!r} 로 시작하는 명령이 {len(matches)}개: {matches}"
    return matches[0]


# README의 출력 예시에서 실행마다 바뀌는 부분(id, pid, 시간, 호스트 이름)은 이 표시 하나로 적는다.
# 비교할 때 이 표시는 한 줄 안의 아무 글자들(하나 이상)과 맞는다. 나머지는 글자 그대로 같아야 한다.
PLACEHOLDER = "‹…›"


def sample_outputs(text: str) -> list[str]:
    """실습 README의 출력 예시 블록들: ```text 블록 가운데 call_tasks 의 단계 머리줄([1. …])이 있는 것."""
    return [block for block in code_blocks(text, "text") if re.search(r"^\[\d+\. ", block, re.MULTILINE)]


def _line_pattern(line: str) -> str:
    return ".+?".join(re.escape(part) for part in line.rstrip().split(PLACEHOLDER))


def sample_mismatches(sample: str, output: str) -> list[str]:
    """출력 예시가 실제 출력과 줄마다 맞는지. 예시는 단계([N. …])마다 실제 출력의 이어진 줄들과 같아야 하고, 단계의
    순서도 같아야 한다(예시는 단계 몇 개만 보여 줄 수 있다). 맞지 않는 단계마다 설명 한 줄을 돌려준다."""
    lines = [line.rstrip() for line in output.splitlines()]
    chunks = re.split(r"\n(?=\[\d+\. )", sample.strip("\n"))
    problems, position = [], 0
    for chunk in chunks:
        patterns = [re.compile(_line_pattern(line) + r"\Z") for line in chunk.splitlines()]
        found = None
        for start in range(position, len(lines) - len(patterns) + 1):
            if all(p.match(lines[start + i]) for i, p in enumerate(patterns)):
                found = start
                break
        if found is None:
            problems.append(f"not in the real output (in this order): {chunk.splitlines()[0]!r}")
        else:
            position = found + len(patterns)
    return problems


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


RUN_HEADING = "\n## 실행\n"  # 한국어판의 '실행' 절(영어판도 같은 명령이다: test_readme)


def readme_workers(lesson: str) -> list[ReadmeWorker]:
    """그 실습 README의 '실행' 절 첫 bash 블록에 적힌 워커 명령들을, 아직 띄우지 않은 채로."""
    block = code_blocks(readme(lesson_readmes(lesson)[0]).split(RUN_HEADING, 1)[1], "bash")[0]
    return [ReadmeWorker(lesson, command) for command in block_commands(block) if " worker" in command]
