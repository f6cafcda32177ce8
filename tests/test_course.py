"""course.py: 실습들이 함께 쓰는 틀(Journal, wait_until, never_within, Scenario, 실습 폴더의 모양)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from celery.exceptions import TimeoutError as CeleryTimeoutError

from course import Happened, Journal, NotInTime, Scenario, never_within, wait_until
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
        assert '"보내짐"' not in text, path  # 예외가 나야 하는 호출은 scenario.raises(...) 로 보인다


def test_the_journal_reads_back_in_order_what_a_task_process_wrote():
    # Journal은 Redis 목록일 뿐이라 워커 없이도 확인할 수 있다. 다른 프로세스(작업을 실행하는 풀 프로세스 같은)가
    # 적은 줄을 읽는다.
    journal = Journal("practice10")
    run = Journal.new_run()
    code = (
        f"from course import Journal\nj = Journal('practice10')\nj.write({run!r}, '시작', n=1)\nj.write({run!r}, '끝')"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=30)
    first, second = journal.read(run)
    assert (first.what, first["n"], second.what, second.fields) == ("시작", 1, "끝", {})
    assert first.pid == second.pid != os.getpid() and first.at <= second.at
    assert journal.whats(run) == ["시작", "끝"]
    assert journal.key(run) == f"practice10:journal:{run}"
    assert 0 < journal.redis.ttl(journal.key(run)) <= Journal.TTL_SECONDS
    assert json.loads(journal.redis.lindex(journal.key(run), 0))["what"] == "시작"  # redis-cli 로도 읽힌다
    assert journal.wait_for(run, 1, what="끝") == [first, second]
    with pytest.raises(NotInTime) as late:
        journal.wait_for(run, 3, timeout=0.2)
    assert isinstance(late.value, CeleryTimeoutError)  # get() 이 내는 것과 같은 종류의 예외
    assert "실행 기록 3줄" in str(late.value)


def test_wait_until_returns_the_first_true_value_and_never_within_fails_when_it_happens():
    values = iter([None, 0, [], "third"])
    assert wait_until(lambda: next(values), "셋째 값") == "third"
    with pytest.raises(NotInTime, match=r"0\.1초를 기다렸지만 오지 않았습니다: 오지 않는 값"):
        wait_until(lambda: None, "오지 않는 값", timeout=0.1)
    never_within(0.1, lambda: None, "일어나지 않는 일")
    calls = iter([False, False, True])
    with pytest.raises(Happened, match="일어나지 않아야 할 일이 일어났습니다: 셋째 확인"):
        never_within(5, lambda: next(calls), "셋째 확인")


def test_a_surprise_from_never_within_ends_the_scenario_with_exit_code_one(capsys):
    def scenario():
        never_within(0.1, lambda: "보였다", "보이지 않아야 할 것")

    assert Scenario(app).run(scenario) == 1
    out = capsys.readouterr().out
    assert "!! 예상과 다름: 일어나지 않아야 할 일이 일어났습니다: 보이지 않아야 할 것 ('보였다')" in out


def test_a_wait_that_times_out_ends_the_scenario_by_naming_the_workers_to_start(capsys):
    def scenario():
        wait_until(lambda: None, "워커의 답", timeout=0.1)

    assert Scenario(app).run(scenario) == 1
    out = capsys.readouterr().out
    assert "0.1초를 기다렸지만 오지 않았습니다: 워커의 답. practice02 워커가 실행 중인가요?" in out
    assert "    celery -A practice02.tasks worker --loglevel=info\n" in out


def test_a_lesson_that_starts_its_own_workers_names_no_worker_command_when_a_wait_times_out(capsys):
    from practice13.tasks import app as own_workers_app

    def scenario():
        wait_until(lambda: None, "새 워커의 실행 기록", timeout=0.1)

    assert Scenario(own_workers_app).run(scenario) == 1
    out = capsys.readouterr().out
    assert "0.1초를 기다렸지만 오지 않았습니다: 새 워커의 실행 기록. 이 실습은 워커를 직접 띄웁니다.\n" in out
    assert "PLAYGROUND_WAIT_SECONDS=30" in out
    assert "celery -A" not in out and "다른 터미널" not in out
