"""`python -m playground check`: 실습 폴더마다 빠진 것을 이름으로 말한다(CONTRIBUTING.md 의 목록)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from playground import PROJECT_ROOT


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


def test_the_repository_passes_the_check():
    run = run_check(PROJECT_ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("0 problems")


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
        "practice99/README.md does not give the declared commands",
    ):
        assert missing in out, (missing, out)
    # 실습 README가 없으면 그것도 이름으로
    (copy / "practice99" / "README.en.md").unlink()
    assert "practice99/README.en.md is missing (the lesson's full text)" in run_check(copy).stdout


def test_contributing_lists_the_steps_in_both_languages_and_ends_with_the_check():
    text = (PROJECT_ROOT / "CONTRIBUTING.md").read_text()
    assert "# 기여하기: 실습 하나 더하기" in text and "# Contributing: adding a lesson" in text
    for needed in ("NEEDS", "tests/test_practiceNN.py", "uv run python -m playground check", "README.en.md"):
        assert text.count(needed) >= 2, needed  # 두 언어 모두


def test_a_worker_whose_module_is_missing_is_named(tmp_path):
    copy = copy_of_the_repository(tmp_path)
    tasks = copy / "practice12" / "tasks.py"
    tasks.write_text(tasks.read_text().replace('WorkerSpec(module="redis_tasks")', 'WorkerSpec(module="elsewhere")'))
    run = run_check(copy)
    assert run.returncode == 1
    assert "practice12/elsewhere.py (a worker in NEEDS runs it) does not import: ModuleNotFoundError" in run.stdout
