"""CONTRIBUTING.md 의 한국어 문체 안내 가운데 기계가 볼 수 있는 규칙 (playground/style.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground import PROJECT_ROOT
from playground.style import findings, findings_in
from tests.test_check import copy_of_the_repository, run_check


def _rules(path: Path, text: str) -> list[str]:
    return [finding.rule.name for finding in findings_in(path, text)]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("워커가 작업을 돕니다.", "banned-word"),
        ("손으로 해 보기", "banned-word"),
        ("진짜 RabbitMQ 에 붙습니다.", "banned-word"),
        ("교환기에 메시지를 보냅니다.", "banned-word"),
        ("작업의 서명을 만듭니다.", "banned-word"),
        ("기본값은 일찍 ack 입니다.", "banned-word"),
        ("Celery 의 기본값입니다.", "particle-spacing"),
        ("README 는 두 언어로 씁니다.", "particle-spacing"),
        ("RabbitMQ 4.3 은 막습니다.", "particle-spacing"),
        ("practice12 에서 다룹니다.", "particle-spacing"),
        ("`acks_late`면 끝난 뒤에 ack 합니다.", "code-particle"),
        ("3 단계에서 봅니다.", "number-unit"),
        ("2 초 기다립니다.", "number-unit"),
    ],
)
def test_each_rule_catches_a_planted_mistake_in_markdown_and_in_python(text, rule):
    assert rule in _rules(Path("practice99/README.md"), f"# 제목\n\n{text}\n")
    assert rule in _rules(Path("practice99/tasks.py"), f"x = 1  # {text}\n")


@pytest.mark.parametrize(
    "text",
    [
        "Celery의 기본값입니다. README는 두 언어로 씁니다. RabbitMQ 4.3은 막습니다.",
        "`acks_late` 면 끝난 뒤에 ack 합니다. `get()` 은 기다립니다.",
        "3단계에서 2초 기다린 뒤 1,000개를 보냅니다.",
        "call_tasks 가 찍습니다. tasks.py 의 상수입니다.",  # 밑줄이나 점이 든 낱말은 코드로 본다
        "직접 해 보기: 실제 RabbitMQ에서.",
    ],
)
def test_the_house_style_passes(text):
    assert _rules(Path("practice99/README.md"), f"{text}\n") == []


def test_code_blocks_code_spans_and_english_lines_are_not_read():
    text = "```text\nCelery 의 출력 3 단계\n```\n\n`손으로` 는 예입니다.\n\nCelery is fine here.\n"
    assert _rules(Path("practice99/README.md"), text) == []


def test_the_repository_follows_the_rules():
    assert [str(finding) for finding in findings()] == []


def test_playground_check_reports_a_planted_mistake_by_file_and_line(tmp_path):
    copy = copy_of_the_repository(tmp_path)
    readme = copy / "practice00" / "README.md"
    readme.write_text(readme.read_text() + "\nCelery 의 워커가 3 단계를 돕니다.\n")
    run = run_check(copy)
    assert run.returncode == 1
    line = len(readme.read_text().splitlines())
    for rule in ("particle-spacing", "number-unit", "banned-word"):
        assert f"practice00/README.md:{line}: [{rule}]" in run.stdout
    assert (PROJECT_ROOT / "practice00" / "README.md").read_text() != readme.read_text()
