"""`python -m playground check` — 실습 폴더마다 빠진 것이나 어긋난 것을 이름으로 말한다.

CONTRIBUTING.md 의 "실습 하나 더하기" 목록을 이 모듈이 확인한다. 규칙 하나가 이름 있는 작은 검사 하나다
(LESSON_CHECKS, PROJECT_CHECKS). 테스트도 같은 검사를 부른다: 규칙은 여기 한 곳에만 있다.
모두 갖추었으면 종료 코드 0으로, 하나라도 빠지면 1로 끝난다. 서비스에 연결하지 않는다(실습 모듈을 import만 한다).
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

from course import Needs
from playground import PROJECT_ROOT
from playground.lessons import LESSON_PATTERN, available_lessons
from playground.readme import README_FILES, lesson_readmes, readme, run_commands, sample_outputs, table_first_cells
from playground.style import findings as style_findings

LESSON_FILES = ("__init__.py", "tasks.py", "call_tasks.py", "lesson.py")
CALLS_MAX_LINES = 60  # call_tasks.py 의 calls() 가 넘지 않는 줄 수
LessonCheck = Callable[[str], Iterator[str]]
LESSON_CHECKS: dict[str, LessonCheck] = {}  # 검사 이름 → 실습 하나를 보고 문제마다 한 줄을 내는 함수
PROJECT_CHECKS: dict[str, Callable[[], Iterator[str]]] = {}  # 저장소 전체를 한 번 보는 검사


def lesson_check(function: LessonCheck) -> LessonCheck:
    LESSON_CHECKS[function.__name__] = function
    return function


def project_check(function: Callable[[], Iterator[str]]) -> Callable[[], Iterator[str]]:
    PROJECT_CHECKS[function.__name__] = function
    return function


def lesson_folders() -> list[str]:
    """practiceNN 모양의 폴더 전부 (실행기가 아직 모르는 것까지)."""
    return sorted(p.name for p in PROJECT_ROOT.iterdir() if p.is_dir() and LESSON_PATTERN.fullmatch(p.name))


class Unreadable(Exception):
    """검사할 파일을 읽을 수 없다. 그 파일을 보는 검사가 이미 이름을 붙여 말했다."""


def _module(lesson: str, name: str) -> ModuleType:
    if not (PROJECT_ROOT / lesson / f"{name}.py").is_file():
        raise Unreadable(name)
    try:
        return importlib.import_module(f"{lesson}.{name}")
    except Exception as exc:  # 어떤 실패든 이름을 붙여 보고한다(imports 검사)
        raise Unreadable(name) from exc


def _app(lesson: str):
    app = getattr(_module(lesson, "tasks"), "app", None)
    if app is None:
        raise Unreadable("tasks.app")
    return app


def _needs(lesson: str) -> Needs:
    needs = getattr(_module(lesson, "lesson"), "NEEDS", None)
    if not isinstance(needs, Needs):
        raise Unreadable("lesson.NEEDS")
    return needs


def declared_commands(lesson: str) -> list[str]:
    """그 실습을 실행하는 명령들: lesson.py 의 NEEDS가 띄우는 프로세스들, 그리고 call_tasks."""
    return [*_needs(lesson).commands(lesson), f"python -m {lesson}.call_tasks"]


@lesson_check
def files(lesson: str) -> Iterator[str]:
    for name in LESSON_FILES:
        if not (PROJECT_ROOT / lesson / name).is_file():
            yield f"{lesson}/{name} is missing"
    if lesson not in available_lessons():
        yield "the runner does not know it (python -m playground needs tasks.py and call_tasks.py)"


@lesson_check
def imports(lesson: str) -> Iterator[str]:
    for name in ("tasks", "lesson"):
        if (PROJECT_ROOT / lesson / f"{name}.py").is_file():
            try:
                importlib.import_module(f"{lesson}.{name}")
            except Exception as exc:  # 어떤 실패든 이름을 붙여 보고한다
                yield f"{lesson}/{name}.py does not import: {type(exc).__name__}: {exc}"


@lesson_check
def app_name(lesson: str) -> Iterator[str]:
    tasks = _module(lesson, "tasks")
    app = getattr(tasks, "app", None)
    if app is None:
        yield f"{lesson}/tasks.py has no Celery app named `app`"
    elif app.main != lesson:
        yield f"{lesson}/tasks.py: the app is named {app.main!r}, not {lesson!r} (Celery({lesson!r}, ...))"


@lesson_check
def needs(lesson: str) -> Iterator[str]:
    found = getattr(_module(lesson, "lesson"), "NEEDS", None)
    if not isinstance(found, Needs):
        yield f"{lesson}/lesson.py declares no NEEDS = Needs(workers=..., waits=...) (the processes and the waits)"
    elif not found.workers and not found.starts_workers:
        yield f"{lesson}/lesson.py: NEEDS names no worker (and call_tasks does not start its own: starts_workers=True)"


@lesson_check
def default_queue(lesson: str) -> Iterator[str]:
    # 기본 큐는 실습 이름이다. 큐 자체가 주제인 실습(practice05)은 NEEDS의 워커가 소비하는 큐 가운데 하나다.
    queue = _app(lesson).conf.task_default_queue
    if queue != lesson and not any(queue in worker.queues for worker in _needs(lesson).workers):
        yield f"{lesson}/tasks.py: task_default_queue is {queue!r}; each lesson uses its own queue ({lesson!r})"


@lesson_check
def worker_apps(lesson: str) -> Iterator[str]:
    # 다른 모듈의 앱을 띄우는 워커(practice12의 redis_tasks): celery -A {lesson}.{module} 이 찾을 앱이 있어야 한다.
    for module in sorted({spec.module for spec in _needs(lesson).workers} - {"tasks"}):
        try:
            other = importlib.import_module(f"{lesson}.{module}")
        except Exception as exc:  # 어떤 실패든 이름을 붙여 보고한다
            yield f"{lesson}/{module}.py (a worker in NEEDS runs it) does not import: {type(exc).__name__}: {exc}"
            continue
        if getattr(other, "app", None) is None:
            yield f"{lesson}/{module}.py (a worker in NEEDS runs it) has no Celery app named `app`"


@lesson_check
def docstring_commands(lesson: str) -> Iterator[str]:
    commands = declared_commands(lesson)
    in_docstring = re.findall(r"터미널 \d:\s+(.+)", _module(lesson, "tasks").__doc__ or "")
    if in_docstring[: len(commands)] != commands:
        yield f"{lesson}/tasks.py: the docstring's commands are not the declared ones: {commands}"


@lesson_check
def calls_length(lesson: str) -> Iterator[str]:
    # 긴 시나리오는 단계마다 함수로 나눈다. calls() 는 그 단계들을 차례로 부르는 목차로 읽힌다.
    path = PROJECT_ROOT / lesson / "call_tasks.py"
    if not path.is_file():
        return
    tree = ast.parse(path.read_text())
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "calls"]
    if not found:
        yield f"{lesson}/call_tasks.py has no calls() (the scenario that Scenario.run runs)"
    elif (length := found[0].end_lineno - found[0].lineno + 1) > CALLS_MAX_LINES:
        yield (
            f"{lesson}/call_tasks.py: calls() is {length} lines; "
            f"split its steps into functions (at most {CALLS_MAX_LINES})"
        )


@lesson_check
def test_module(lesson: str) -> Iterator[str]:
    if not (PROJECT_ROOT / "tests" / f"test_{lesson}.py").is_file():
        yield f"tests/test_{lesson}.py is missing"


@lesson_check
def readmes(lesson: str) -> Iterator[str]:
    for name in lesson_readmes(lesson):
        if not (PROJECT_ROOT / name).is_file():
            yield f"{name} is missing (the lesson's full text)"


@lesson_check
def run_block(lesson: str) -> Iterator[str]:
    # '실행' 절의 첫 bash 블록은 NEEDS의 명령들과 call_tasks 다. 워커 명령은 NEEDS 한 곳에서 온다.
    commands = declared_commands(lesson)
    for name in lesson_readmes(lesson):
        if (PROJECT_ROOT / name).is_file() and run_commands(readme(name)) != commands:
            yield f"{name}: the first bash block of its run section does not give the declared commands {commands}"


@lesson_check
def sample_output(lesson: str) -> Iterator[str]:
    for name in lesson_readmes(lesson):
        if (PROJECT_ROOT / name).is_file() and len(sample_outputs(readme(name))) != 1:
            yield f"{name} shows no sample output (one ```text block starting with a '[1. …]' step line)"


def lesson_list_row(lesson: str, language: int) -> str:
    """최상위 README(그 언어판)의 실습 목록에서 그 실습의 행이 시작하는 칸: 그 언어의 실습 README로 가는 링크."""
    return f"[{lesson}]({lesson_readmes(lesson)[language]})"


@lesson_check
def lesson_list(lesson: str) -> Iterator[str]:
    for language, name in enumerate(README_FILES):
        if lesson_list_row(lesson, language) not in table_first_cells(readme(name)):
            yield f"{name} has no row for {lesson} in the lesson list (| {lesson_list_row(lesson, language)} | …)"


@project_check
def lesson_list_order() -> Iterator[str]:
    # 실습 목록의 행은 실습마다 하나, 실습 순서대로다. 없는 실습의 행도 없다.
    for language, name in enumerate(README_FILES):
        rows = [cell for cell in table_first_cells(readme(name)) if re.match(r"\[practice\d\d\]", cell)]
        expected = [lesson_list_row(lesson, language) for lesson in available_lessons()]
        if rows != expected:
            yield f"{name}: the lesson list rows are {rows}, not one per lesson in order {expected}"


def problems_of(lesson: str, checks: dict[str, LessonCheck] = LESSON_CHECKS) -> list[str]:
    """실습 하나의 문제들. 앞선 검사가 말한 파일(못 읽는 tasks.py 등)에 기대는 검사는 건너뛴다."""
    found = []
    for check in checks.values():
        try:
            found.extend(check(lesson))
        except Unreadable:
            continue
    return found


def project_problems() -> list[str]:
    return [problem for check in PROJECT_CHECKS.values() for problem in check()]


def main() -> int:
    found = 0
    for lesson in lesson_folders():
        problems = problems_of(lesson)
        found += len(problems)
        print(f"{lesson}: {'ok' if not problems else f'{len(problems)} missing or inconsistent'}")
        for problem in problems:
            print(f"  - {problem}")
    problems = project_problems()
    print(f"lesson list: {'ok' if not problems else f'{len(problems)} problems'}")
    for problem in problems:
        print(f"  - {problem}")
    found += len(problems)
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
