"""README 의 목차와 명령이 실제 실습, 모듈과 맞는지 확인한다."""

from __future__ import annotations

import importlib.util
import re

from playground import PROJECT_ROOT
from playground.lessons import available_lessons

README = (PROJECT_ROOT / "README.md").read_text()


def github_slug(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_every_lesson_has_a_section_and_a_row_in_the_lesson_table():
    sections = re.findall(r"^## (practice\d\d) — ", README, re.MULTILINE)
    assert sections == available_lessons()
    assert re.findall(r"^\| \[(practice\d\d)\]", README, re.MULTILINE) == available_lessons()


def test_lesson_table_links_point_at_headings():
    slugs = {github_slug(h) for h in re.findall(r"^#+ (.+)$", README, re.MULTILINE)}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links and all(link in slugs for link in links), [link for link in links if link not in slugs]


def test_every_module_the_readme_runs_exists():
    modules = set(re.findall(r"python -m ([\w.]+)", README)) | set(re.findall(r"celery -A ([\w.]+)", README))
    assert {"playground", "practice00.call_tasks", "practice00.tasks"} <= modules
    missing = [m for m in sorted(modules) if importlib.util.find_spec(m) is None]
    assert missing == []


def test_the_readme_test_command_is_what_ci_runs():
    assert "uv run pytest" in README
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "uv run pytest"
