"""`python -m playground practiceNN|all` — 실습 하나(또는 전부)를 처음부터 끝까지 돌린다.

서비스 점검 → 그 실습의 워커 띄우기(준비될 때까지) → call_tasks 실행 → 워커 멈추기.
워커 로그와 call_tasks 출력을 접두사를 붙여 한 터미널에 함께 보여 준다.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass

from course import unreachable_services
from playground.lessons import available_lessons, lesson_workers, run_call_tasks
from playground.workers import Worker, WorkerError, running

EXIT_LESSON_FAILED = 1
EXIT_USAGE = 2
EXIT_SERVICES_DOWN = 3


class Console:
    """여러 스레드(워커 로그 읽기, call_tasks 출력 읽기)가 한 줄씩 섞이지 않게 찍는다."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def say(self, text: str = "") -> None:
        with self._lock:
            print(text, flush=True)

    def tagged(self, tag: str, line: str) -> None:
        self.say(f"{tag:<18}│ {line}")


@dataclass(frozen=True)
class Outcome:
    lesson: str
    ok: bool
    seconds: float
    detail: str


def run_lesson(lesson: str, console: Console) -> Outcome:
    started = time.monotonic()
    console.say(f"━━ {lesson} " + "━" * 50)

    def show_worker_line(worker: Worker, line: str) -> None:
        console.tagged(worker.name, line)

    workers = lesson_workers(lesson, on_line=show_worker_line)
    try:
        with running(*workers):
            ready = time.monotonic() - started
            result = run_call_tasks(lesson, on_line=lambda line: console.tagged("call_tasks", line))
    except WorkerError as exc:
        return Outcome(lesson, False, time.monotonic() - started, f"워커가 뜨지 못했습니다: {exc}")
    seconds = time.monotonic() - started
    if result.returncode != 0:
        return Outcome(lesson, False, seconds, f"call_tasks 종료 코드 {result.returncode}")
    detail = f"워커 준비 {ready:.1f}초, call_tasks {result.seconds:.1f}초"
    return Outcome(lesson, True, seconds, detail)


def main(argv: list[str] | None = None) -> int:
    lessons = available_lessons()
    parser = argparse.ArgumentParser(
        prog="python -m playground",
        description="실습의 워커를 띄우고 call_tasks 를 돌린 뒤 워커를 멈춘다.",
    )
    parser.add_argument("lesson", help=f"실습 이름 또는 all (있는 실습: {', '.join(lessons)})")
    args = parser.parse_args(argv)

    if args.lesson == "all":
        selected = lessons
    elif args.lesson in lessons:
        selected = [args.lesson]
    else:
        print(f"'{args.lesson}' 라는 실습은 없습니다. 있는 실습: {', '.join(lessons)}, 또는 all", file=sys.stderr)
        return EXIT_USAGE

    console = Console()
    problems = unreachable_services()
    if problems:
        console.say("서비스가 준비되지 않아 실습을 시작하지 않습니다.\n")
        console.say("\n".join(problems))
        return EXIT_SERVICES_DOWN

    outcomes = []
    for lesson in selected:
        outcome = run_lesson(lesson, console)
        outcomes.append(outcome)
        mark = "통과" if outcome.ok else "실패"
        console.say(f"━━ {lesson}: {mark} ({outcome.seconds:.1f}초) — {outcome.detail}\n")

    if len(outcomes) > 1:
        console.say("요약")
        for outcome in outcomes:
            console.say(f"  {outcome.lesson}  {'통과' if outcome.ok else '실패'}  {outcome.seconds:5.1f}초")
        console.say(f"  합계  {sum(o.seconds for o in outcomes):.1f}초")
    return 0 if all(o.ok for o in outcomes) else EXIT_LESSON_FAILED
