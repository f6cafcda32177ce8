"""`python -m playground check` — 실습 폴더마다 빠진 것이나 어긋난 것을 이름으로 말한다.

CONTRIBUTING.md 의 "실습 하나 더하기" 목록을 이것이 확인한다. 모두 갖추었으면 종료 코드 0, 하나라도 빠지면 1.
서비스에 연결하지 않는다(실습 모듈을 import만 한다).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator

from course import Needs
from playground import PROJECT_ROOT
from playground.lessons import LESSON_PATTERN, available_lessons
from playground.style import findings as style_findings

TOP_READMES = ("README.md", "README.en.md")


def lesson_folders() -> list[str]:
    """practiceNN 모양의 폴더 전부 (실행기가 아직 모르는 것까지)."""
    return sorted(p.name for p in PROJECT_ROOT.iterdir() if p.is_dir() and LESSON_PATTERN.fullmatch(p.name))


def problems_of(lesson: str) -> Iterator[str]:
    folder = PROJECT_ROOT / lesson
    for name in ("__init__.py", "tasks.py", "call_tasks.py"):
        if not (folder / name).is_file():
            yield f"{lesson}/{name} is missing"
    if lesson not in available_lessons():
        yield "the runner does not know it (python -m playground needs tasks.py and call_tasks.py)"
    if not (folder / "tasks.py").is_file():
        return
    try:
        tasks = importlib.import_module(f"{lesson}.tasks")
    except Exception as exc:  # 어떤 실패든 이름을 붙여 보고한다
        yield f"{lesson}/tasks.py does not import: {type(exc).__name__}: {exc}"
        return
    app = getattr(tasks, "app", None)
    if app is None:
        yield f"{lesson}/tasks.py has no Celery app named `app`"
    elif app.main != lesson:
        yield f"{lesson}/tasks.py: the app is named {app.main!r}, not {lesson!r} (Celery({lesson!r}, ...))"
    needs = getattr(tasks, "NEEDS", None)
    if not isinstance(needs, Needs):
        yield f"{lesson}/tasks.py declares no NEEDS = Needs(workers=..., waits=...) (the processes and the waits)"
        return
    if app is not None:
        # 기본 큐는 실습 이름이다. 큐 자체가 주제인 실습(practice05)은 NEEDS의 워커가 소비하는 큐 가운데 하나다.
        queue = app.conf.task_default_queue
        if queue != lesson and not any(queue in worker.queues for worker in needs.workers):
            yield f"{lesson}/tasks.py: task_default_queue is {queue!r}; each lesson uses its own queue ({lesson!r})"
    if not needs.workers:
        yield f"{lesson}/tasks.py: NEEDS names no worker"
    for module in sorted({spec.module for spec in needs.workers} - {"tasks"}):
        # 다른 모듈의 앱을 띄우는 워커(practice12의 redis_tasks): celery -A {lesson}.{module} 이 찾을 앱이 있어야 한다.
        try:
            other = importlib.import_module(f"{lesson}.{module}")
        except Exception as exc:  # 어떤 실패든 이름을 붙여 보고한다
            yield f"{lesson}/{module}.py (a worker in NEEDS runs it) does not import: {type(exc).__name__}: {exc}"
            continue
        if getattr(other, "app", None) is None:
            yield f"{lesson}/{module}.py (a worker in NEEDS runs it) has no Celery app named `app`"
    commands = [*needs.commands(lesson), f"python -m {lesson}.call_tasks"]
    in_docstring = re.findall(r"터미널 \d:\s+(.+)", tasks.__doc__ or "")
    if in_docstring[: len(commands)] != commands:
        yield f"{lesson}/tasks.py: the docstring's commands are not the declared ones: {commands}"
    if not (PROJECT_ROOT / "tests" / f"test_{lesson}.py").is_file():
        yield f"tests/test_{lesson}.py is missing"
    for readme in TOP_READMES:
        own = folder / readme
        if not own.is_file():
            yield f"{lesson}/{readme} is missing (the lesson's full text)"
        elif not all(command in own.read_text() for command in commands):
            yield f"{lesson}/{readme} does not give the declared commands {commands}"
        elif not re.search(r"^```text\n\[\d+\. ", own.read_text(), re.MULTILINE):
            yield f"{lesson}/{readme} shows no sample output (a ```text block starting with a '[1. …]' step line)"
        # 최상위 README의 실습 목록: 실습마다 그 언어의 실습 README로 가는 행 하나.
        if not re.search(
            rf"^\| \[{lesson}\]\({lesson}/{re.escape(readme)}\)", (PROJECT_ROOT / readme).read_text(), re.M
        ):
            yield f"{readme} has no row for {lesson} in the lesson list (| [{lesson}]({lesson}/{readme}) | …)"


def main() -> int:
    found = 0
    for lesson in lesson_folders():
        problems = list(problems_of(lesson))
        found += len(problems)
        print(f"{lesson}: {'ok' if not problems else f'{len(problems)} missing or inconsistent'}")
        for problem in problems:
            print(f"  - {problem}")
    # 한국어 문체 안내(CONTRIBUTING.md) 가운데 기계가 볼 수 있는 규칙: 파일과 줄 번호로.
    style = style_findings()
    by_file: dict[str, list[str]] = {}
    for finding in style:
        by_file.setdefault(str(finding).split(":", 1)[0], []).append(str(finding))
    print(f"Korean style: {'ok' if not style else f'{len(style)} problems in {len(by_file)} files'}")
    for lines in by_file.values():
        for line in lines:
            print(f"  - {line}")
    found += len(style)
    print(f"\n{len(lesson_folders())} lessons, {found} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
