"""course.py: call_tasks 들이 함께 쓰는 틀(Scenario.show, Scenario.raises, 실습 폴더의 모양)."""

from __future__ import annotations

import pytest

from course import Scenario
from playground import PROJECT_ROOT
from practice02.tasks import app


def test_raises_hands_over_the_exception_and_the_time_it_took(capsys):
    lesson = Scenario(app)
    with lesson.raises(ValueError) as raised:
        raise ValueError("bad")
    assert isinstance(raised.exc, ValueError) and raised.seconds >= 0
    assert lesson.surprises == []
    assert capsys.readouterr().out == ""


def test_raises_records_a_surprise_when_nothing_is_raised(capsys):
    lesson = Scenario(app)
    with lesson.raises(TypeError) as raised:
        pass
    assert raised.exc is None
    assert lesson.surprises == ["예외(TypeError)가 나야 하는 호출"]
    assert "!! 예상과 다름: 예외(TypeError)가 나야 하는 호출" in capsys.readouterr().out


def test_raises_lets_any_other_exception_through():
    lesson = Scenario(app)
    with pytest.raises(KeyError), lesson.raises(TypeError):
        raise KeyError("other")


def test_show_prints_one_line_and_checks_only_what_it_is_given(capsys):
    lesson = Scenario(app)
    assert lesson.show("add.delay(2, 3).get()", 5, 5) == 5
    lesson.show("add.s(1, 2)", "anything", note="찍기만 한다")
    assert lesson.surprises == []
    assert capsys.readouterr().out == "    add.delay(2, 3).get() → 5\n    add.s(1, 2) → 'anything'   (찍기만 한다)\n"
    lesson.show("result.get()", 4, 5)
    assert lesson.surprises == ["result.get()"]
    assert "!! 예상과 다름: result.get() = 4 (예상: 5)" in capsys.readouterr().out


def test_lesson_files_need_no_formatter_escapes_and_no_sentinels():
    for path in sorted(PROJECT_ROOT.glob("practice[0-9][0-9]/*.py")):
        text = path.read_text()
        assert "fmt: skip" not in text, path
        assert '"보내짐"' not in text, path  # 예외가 나야 하는 호출은 lesson.raises(...) 로 보인다
