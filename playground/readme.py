"""README와 docs/ 의 Markdown에서 절, 코드 블록, 명령, 링크, 출력 예시를 읽어 낸다.

Markdown은 markdown-it-py(CommonMark)로 파싱한다. 목록 안에서 들여 쓴 코드 블록도, 코드 블록 안의 `#` 줄도
Markdown이 뜻하는 그대로 읽힌다. `playground check`, 한국어 문체 검사, 테스트가 모두 이 모듈 하나를 쓴다.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from playground import PROJECT_ROOT

README_FILES = ("README.md", "README.en.md")  # 최상위 README: 강좌의 첫 화면과 실습 목록 (한국어판, 영어판)
# docs/ 의 쪽마다 (한국어판, 영어판): 첫날에는 읽지 않아도 되는, 강좌 전체에 걸친 글
DOC_PAIRS = tuple((f"docs/{name}.md", f"docs/{name}.en.md") for name in ("runner", "services", "flower", "testing"))
# 실습 README에서 띄울 프로세스와 call_tasks 명령을 적는 절의 제목 (한국어판, 영어판)
RUN_HEADINGS = ("실행", "Running it")
# README의 출력 예시에서 실행마다 바뀌는 부분(id, pid, 시간, 호스트 이름)은 이 표시 하나로 적는다.
# 비교할 때 이 표시는 한 줄 안의 아무 글자 하나 이상과 맞는다. 나머지는 글자 그대로 같아야 한다.
PLACEHOLDER = "‹…›"
STEP_LINE = re.compile(r"^\[\d+\. ", re.MULTILINE)  # call_tasks 가 찍는 단계 머리줄: [1. …]

_PARSER = MarkdownIt("commonmark").enable("table")


def lesson_readmes(lesson: str) -> tuple[str, str]:
    """그 실습의 전체 글: 한국어판과 영어판."""
    return (f"{lesson}/README.md", f"{lesson}/README.en.md")


def readme_pairs(lessons: list[str]) -> list[tuple[str, str]]:
    """서로 같은 내용이어야 하는 (한국어판, 영어판) 쌍들: 최상위 README, docs/ 의 쪽들, 실습마다의 README."""
    return [README_FILES, *DOC_PAIRS, *(lesson_readmes(lesson) for lesson in lessons)]


def readme(name: str = "README.md") -> str:
    return (PROJECT_ROOT / name).read_text()


@lru_cache(maxsize=256)
def _tokens(text: str) -> tuple[Token, ...]:
    return tuple(_PARSER.parse(text))


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    line: int  # 0부터 센 줄 번호


def headings(text: str) -> list[Heading]:
    tokens = _tokens(text)
    return [
        Heading(int(token.tag[1]), tokens[i + 1].content, token.map[0])
        for i, token in enumerate(tokens)
        if token.type == "heading_open" and token.map
    ]


def section(text: str, title: str) -> str:
    """제목이 title인 절의 본문(제목 줄 다음부터, 같거나 더 높은 단계의 다음 제목 앞까지). 없으면 KeyError."""
    found = headings(text)
    lines = text.splitlines(keepends=True)
    for index, heading in enumerate(found):
        if heading.title == title:
            end = next((h.line for h in found[index + 1 :] if h.level <= heading.level), len(lines))
            return "".join(lines[heading.line + 1 : end])
    raise KeyError(f"no section titled {title!r}")


def code_blocks(text: str, language: str = "bash") -> list[str]:
    """```language 로 시작하는 코드 블록들의 내용 (목록 안에서 들여 쓴 블록도)."""
    return [
        token.content
        for token in _tokens(text)
        if token.type == "fence" and (token.info.split() or [""])[0] == language
    ]


def block_commands(block: str) -> list[str]:
    """bash 코드 블록 하나의 명령들: 주석과 빈 줄을 빼고, 줄 끝 \\ 로 이어진 줄은 하나로 잇는다."""
    found = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            found.append(line)
    return found


def commands(text: str) -> list[str]:
    """bash 코드 블록들의 명령들."""
    return [command for block in code_blocks(text, "bash") for command in block_commands(block)]


def run_commands(text: str) -> list[str]:
    """실습 README의 '실행' 절(영어판 'Running it') 첫 bash 블록의 명령들: 띄울 프로세스와 call_tasks."""
    for title in RUN_HEADINGS:
        try:
            return block_commands(code_blocks(section(text, title), "bash")[0])
        except (KeyError, IndexError):
            continue
    return []


def _inline_children(text: str) -> Iterator[Token]:
    for token in _tokens(text):
        if token.type == "inline":
            yield from token.children or ()


def links(text: str) -> list[str]:
    """본문의 링크와 이미지의 주소들, 나온 순서대로 (코드 블록과 코드 조각 안의 것은 링크가 아니다)."""
    addresses = {"link_open": "href", "image": "src"}
    return [str(child.attrs[addresses[child.type]]) for child in _inline_children(text) if child.type in addresses]


def inline_code(text: str) -> list[str]:
    """본문의 코드 조각(`…`)들."""
    return [child.content for child in _inline_children(text) if child.type == "code_inline"]


def table_first_cells(text: str) -> list[str]:
    """표의 행마다 첫 칸의 원문(머리 행은 빼고). 실습 목록의 `[practiceNN](practiceNN/README.md)` 칸을 읽는다."""
    tokens = _tokens(text)
    cells, in_body = [], False
    for i, token in enumerate(tokens):
        if token.type in ("tbody_open", "tbody_close"):
            in_body = token.type == "tbody_open"
        elif in_body and token.type == "tr_open":
            cells.append(tokens[i + 2].content)  # tr_open, td_open, inline
    return cells


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """코드 블록을 뺀 본문의 줄들: (1부터 센 줄 번호, 줄)."""
    hidden = set()
    for token in _tokens(text):
        if token.type in ("fence", "code_block") and token.map:
            hidden.update(range(*token.map))
    for number, line in enumerate(text.splitlines(), 1):
        if number - 1 not in hidden:
            yield number, line


def prose(text: str) -> str:
    """코드 블록을 뺀 본문."""
    return "\n".join(line for _, line in prose_lines(text))


def sample_outputs(text: str) -> list[str]:
    """실습 README의 출력 예시 블록들: ```text 블록 가운데 call_tasks 의 단계 머리줄([1. …])이 있는 것."""
    return [block for block in code_blocks(text, "text") if STEP_LINE.search(block)]


def _line_pattern(line: str) -> str:
    return ".+?".join(re.escape(part) for part in line.rstrip().split(PLACEHOLDER))


def sample_mismatches(sample: str, output: str) -> list[str]:
    """출력 예시가 실제 출력과 줄마다 맞는지 본다. 예시는 단계([N. …])마다 실제 출력의 이어진 줄들과 같아야 하고,
    단계의 순서도 같아야 한다(예시는 단계 몇 개만 보여 줄 수 있다). 맞지 않는 단계마다 설명 한 줄을 돌려준다."""
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
