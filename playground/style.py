"""한국어 글의 규칙 가운데 기계가 볼 수 있는 것 (CONTRIBUTING.md 의 "한국어 문체 안내").

`python -m playground check` 가 파일마다 보고하고, tests/test_style.py 가 저장소 전체에 건다. 보는 글은 한글이 든
것뿐이다: 한국어 Markdown 의 본문(코드 블록과 코드 조각은 빼고), 파이썬 파일의 주석과 문자열.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playground import PROJECT_ROOT
from playground.readme import prose_lines

HANGUL = re.compile(r"[가-힣]")
# 조사: 앞말에 붙여 쓴다(한글 맞춤법 41항). 길이가 긴 것부터 (에서가 에보다 먼저).
PARTICLES = (
    "에서는|에서도|에서|에게|으로는|으로|로는|로|까지|부터|보다|처럼|마다|이나|이고|이며|이면|이다|입니다|"
    "의|는|은|을|를|와|과|에|도|만|이|가|나|면|라"
)
AFTER = r"(?=[\s.,)…:;!?'\"]|$)"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    advice: str


RULES = (
    Rule(
        "banned-word",
        re.compile(r"돕니다|돕는다|교환기|손으로|진짜|서명|일찍 ack"),
        "쓰지 않는 말입니다: 돕니다 → 실행됩니다, 교환기 → exchange, 손으로 → 직접, 진짜 → 실제, 서명 → 시그니처, "
        "일찍 ack → 시작 시 ack",
    ),
    Rule(
        "particle-spacing",
        # 코드가 아닌 영문이나 숫자 뒤에 띄어 쓴 조사: "Celery 의" → "Celery의", "README 는" → "README는".
        # 밑줄, 점, 빗금이 든 낱말(call_tasks, tasks.py, 5.7 을 뺀 버전 번호가 아닌 것)은 코드로 보고 건너뛴다.
        re.compile(rf"(?<![\w.`/=-])(?:\d+(?:\.\d+)+|[A-Za-z0-9]+) (?:{PARTICLES}){AFTER}"),
        "일반 낱말 뒤의 조사는 붙여 씁니다(Celery의, Redis는, practice12에서). 코드 조각(`…`) 뒤에만 띄웁니다.",
    ),
    Rule(
        "code-particle",
        re.compile(rf"`(?:{PARTICLES}){AFTER}"),
        "코드 조각(`…`) 뒤의 조사는 한 칸 띄웁니다(`acks_late` 면): 이 강좌의 규칙입니다.",
    ),
    Rule(
        "number-unit",
        # 뒤에 다른 낱말이 붙기 쉬운 단위(일반, 분산, 명령 …)는 넣지 않는다.
        re.compile(r"(?<![\w.])\d+(?:[.,]\d+)? (?:밀리초|초|시간|개|번째|번|단계|바이트|코어)"),
        "숫자와 단위는 붙여 씁니다(3단계, 2초, 1,000개).",
    ),
)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    rule: Rule
    text: str

    def __str__(self) -> str:
        where = self.path.relative_to(PROJECT_ROOT) if self.path.is_relative_to(PROJECT_ROOT) else self.path
        return f"{where}:{self.line}: [{self.rule.name}] {self.text!r}: {self.rule.advice}"


def _markdown_prose(text: str) -> Iterator[tuple[int, str]]:
    """코드 블록 밖의 줄들. 코드 조각은 `…` 로 바꾼다(안의 글자는 보지 않되, 뒤의 조사는 본다)."""
    for number, line in prose_lines(text):
        yield number, re.sub(r"`[^`]+`", "`…`", line)


def _python_texts(source: str) -> Iterator[tuple[int, str]]:
    """주석과 문자열 토큰(docstring 포함)의 줄들. f-string 의 {…} 는 코드이므로 `…` 처럼 다룬다."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return
    for token in tokens:
        if token.type == tokenize.COMMENT or token.type == tokenize.STRING or token.type == tokenize.FSTRING_MIDDLE:
            for offset, line in enumerate(token.string.splitlines()):
                yield token.start[0] + offset, re.sub(r"`[^`]+`", "`…`", line)


# 규칙 자체를 적은 파일: 금지어를 예로 든다.
EXEMPT = ("playground/style.py", "tests/test_style.py")


def korean_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """한국어 글이 있는 파일: 한국어 Markdown(영어판 *.en.md 는 빼고)과 파이썬 파일."""
    skip = {".venv", ".git", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if skip & set(relative.parts) or not path.is_file() or relative.as_posix() in EXEMPT:
            continue
        if (path.suffix == ".md" and not path.name.endswith(".en.md")) or path.suffix == ".py":
            found.append(path)
    return found


def findings_in(path: Path, text: str | None = None) -> list[Finding]:
    text = path.read_text() if text is None else text
    lines = _markdown_prose(text) if path.suffix == ".md" else _python_texts(text)
    found = []
    for number, line in lines:
        if not HANGUL.search(line):
            continue
        for rule in RULES:
            for match in rule.pattern.finditer(line):
                found.append(Finding(path, number, rule, match.group(0)))
    return found


def findings(root: Path = PROJECT_ROOT) -> list[Finding]:
    return [finding for path in korean_files(root) for finding in findings_in(path)]
