"""`python -m playground check`: 실습 폴더마다 빠진 것을 이름으로 말한다(CONTRIBUTING.md 의 목록).

규칙은 playground/check.py 의 이름 있는 검사에만 있다. 여기서는 저장소의 복사본에 검사마다 실수 하나를 심고,
check가 그 검사의 말로 그것을 짚는지 본다. 심은 실수가 없는 검사가 생기면 test_every_check_has_a_planted_mistake 가
실패한다.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from playground import PROJECT_ROOT
from playground.check import LESSON_CHECKS, PROJECT_CHECKS


def run_check(root) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground", "check"], cwd=root, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def copy_of_the_repository(tmp_path):
    """저장소의 복사본 (.venv 와 캐시 없이). 고쳐 보는 실험은 여기서 한다."""
    copy = tmp_path / "repo"
    shutil.copytree(
        PROJECT_ROOT,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"),
    )
    return copy


@dataclass(frozen=True)
class Plant:
    """저장소의 복사본에 심는 실수 하나: path의 old를 new로 바꾼다(old가 None이면 파일을 지운다)."""

    path: str
    old: str | None
    new: str
    said: str  # check가 그 실수를 짚는 말

    def into(self, repo: Path) -> None:
        target = repo / self.path
        if self.old is None:
            target.unlink()
            return
        text = target.read_text()
        assert self.old in text, (self.path, self.old)
        target.write_text(text.replace(self.old, self.new, 1))


ROW_11 = "| [practice11](practice11/README.md) |"
# 검사 이름 → 심는 실수. 실습마다 실수 하나: 한 번의 check 실행으로 모두 본다.
PLANTED = {
    "files": Plant("practice01/lesson.py", None, "", "practice01/lesson.py is missing"),
    "imports": Plant(
        "practice03/tasks.py", "from celery import", "import no_such_module\nfrom celery import",
        "practice03/tasks.py does not import: ModuleNotFoundError",
    ),
    "app_name": Plant(
        "practice04/tasks.py", 'Celery("practice04"', 'Celery("practice4"',
        "practice04/tasks.py: the app is named 'practice4', not 'practice04'",
    ),
    "needs": Plant(
        "practice06/lesson.py", "NEEDS = Needs(", "NEEDED = Needs(", "practice06/lesson.py declares no NEEDS"
    ),
    "default_queue": Plant(
        "practice10/tasks.py", 'task_default_queue="practice10"', 'task_default_queue="celery"',
        "practice10/tasks.py: task_default_queue is 'celery'",
    ),
    "worker_apps": Plant(
        "practice12/lesson.py", 'WorkerSpec(module="redis_tasks")', 'WorkerSpec(module="elsewhere")',
        "practice12/elsewhere.py (a worker in NEEDS runs it) does not import: ModuleNotFoundError",
    ),
    "docstring_commands": Plant(
        "practice00/tasks.py", "python -m practice00.call_tasks", "python call_tasks.py",
        "practice00/tasks.py: the docstring's commands are not the declared ones",
    ),
    "calls_length": Plant(
        "practice11/call_tasks.py", "def calls():\n", "def calls():\n" + "    pass\n" * 60,
        "practice11/call_tasks.py: calls() is 67 lines",
    ),
    "test_module": Plant("tests/test_practice02.py", None, "", "tests/test_practice02.py is missing"),
    "readmes": Plant("practice05/README.en.md", None, "", "practice05/README.en.md is missing"),
    "run_block": Plant(
        "practice07/README.md", "celery -A practice07.tasks beat --loglevel=info", "celery -A practice07.tasks beat",
        "practice07/README.md: the first bash block of its run section does not give the declared commands",
    ),
    "sample_output": Plant(
        "practice08/README.en.md", "```text\n[1. ", "```console\n[1. ", "practice08/README.en.md shows no sample output"
    ),
    "lesson_list": Plant(
        "README.en.md", "[practice09](practice09/README.en.md)", "[practice09](practice09/README.md)",
        "README.en.md has no row for practice09 in the lesson list",
    ),
    "lesson_list_order": Plant("README.md", ROW_11, f"{ROW_11} x |\n{ROW_11}", "README.md: the lesson list rows are"),
}  # fmt: skip


def test_every_check_has_a_planted_mistake():
    assert set(PLANTED) == set(LESSON_CHECKS) | set(PROJECT_CHECKS)


def test_the_repository_passes_the_check():
    run = run_check(PROJECT_ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("0 problems")


def test_each_check_names_its_planted_mistake_and_only_that_lesson_fails(tmp_path):
    copy = copy_of_the_repository(tmp_path)
    for plant in PLANTED.values():
        plant.into(copy)
    run = run_check(copy)
    assert run.returncode == 1
    for name, plant in PLANTED.items():
        assert plant.said in run.stdout, (name, run.stdout)
    # 실수를 하나씩 심었으므로 실습마다 문제 하나다(lesson_list_order 는 저장소 전체의 검사다)
    assert "practice02: 1 missing or inconsistent" in run.stdout


def test_a_copied_lesson_folder_alone_is_named_with_every_missing_piece(tmp_path):
    # 저장소의 복사본에서 한다: 이 저장소에 폴더를 더하면 함께 도는 다른 테스트의 실행기가 그 실습을 돌리려 한다.
    copy = copy_of_the_repository(tmp_path)
    shutil.copytree(copy / "practice02", copy / "practice99")
    run = run_check(copy)
    assert run.returncode == 1
    out = run.stdout
    assert "practice02: ok" in out
    assert "practice99: " in out and "missing or inconsistent" in out
    for missing in (
        "tasks.py: the app is named 'practice02', not 'practice99'",
        "task_default_queue is 'practice02'",
        "the docstring's commands are not the declared ones",
        "tests/test_practice99.py is missing",
        "README.md has no row for practice99 in the lesson list",
        "README.en.md has no row for practice99 in the lesson list",
        "practice99/README.md: the first bash block of its run section does not give the declared commands",
    ):
        assert missing in out, (missing, out)


def test_contributing_lists_the_steps_in_both_languages_and_ends_with_the_check():
    text = (PROJECT_ROOT / "CONTRIBUTING.md").read_text()
    assert "# 기여하기: 실습 하나 더하기" in text and "# Contributing: adding a lesson" in text
    for needed in (
        "NEEDS",
        "lesson.py",
        "tests/test_practiceNN.py",
        "uv run python -m playground check",
        "README.en.md",
    ):
        assert text.count(needed) >= 2, needed  # 두 언어 모두
