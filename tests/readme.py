"""README(한국어판과 영어판)의 코드 블록과 명령을 읽는 도우미. 테스트가 README 에 적힌 그대로를 돌리게 한다."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass

from playground import PROJECT_ROOT

README_FILES = ("README.md", "README.en.md")


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
    """'NAME=value celery -A …' → 환경 변수와 argv. celery 는 이 파이썬의 `python -m celery` 로 바꾼다."""
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
    """README 의 명령 중 prefix 로 시작하는 것 하나 (환경 변수 앞붙임은 건너뛰고 비교한다)."""
    matches = [c for c in commands(text) if re.sub(r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*", "", c).startswith(prefix)]
    assert len(matches) == 1, f"README 에 {prefix!r} 로 시작하는 명령이 {len(matches)}개: {matches}"
    return matches[0]
