"""`python -m playground practiceNN|all|check` 는 실습 하나나 전부를 처음부터 끝까지 실행한다.

`check` 는 실습을 실행하지 않고 실습 폴더마다 빠진 것을 말한다(playground/check.py).

서비스 점검 → 그 실습의 워커 띄우기(준비될 때까지) → call_tasks 실행 → 워커 멈추기.
워커 로그와 call_tasks 출력을 접두사를 붙여 한 터미널에 함께 보여 준다.

여러 실습을 실행할 때는 기다리는 시간을 겹친다. 한 실습의 call_tasks 가 실행되는 동안 다음 실습의 워커를 미리
띄워 두고, 그 로그는 차례가 올 때까지 모아 둔다. 끝난 실습의 워커는 다음 실습이 실행되는 동안 멈춘다.
실습마다 큐가 따로라서 서로의 작업을 가져가지 않는다.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from playground import EXIT_SERVICES_DOWN, exit_on_sigterm
from playground.lessons import available_lessons, lesson_workers, run_call_tasks, stop_running_calls
from playground.services import ensure_services
from playground.workers import Worker, WorkerError, stop_all

EXIT_LESSON_FAILED = 1
EXIT_USAGE = 2
# 실습은 대부분의 시간을 작업이 끝나기를 기다리며 보내고, 실습마다 큐와 워커가 따로라 서로 섞이지 않는다.
# 그래서 둘씩 함께 실행하면 2코어 기계에서도 전체 시간이 크게 준다.
DEFAULT_JOBS = 2


class Console:
    """여러 스레드(워커 로그, call_tasks 출력, 여러 실습)가 찍는 줄을 실습 순서대로 보여 준다.

    plan() 으로 순서를 정하면, 맨 앞 실습의 줄은 곧바로 찍고 나머지 실습의 줄은 모아 둔다. 맨 앞 실습이
    끝나면(finish) 다음 실습이 모아 둔 줄을 내보내고 맨 앞이 된다. 순서에 없거나 이미 보여 준 실습의 줄
    (예: 뒤에서 멈추는 워커의 마지막 로그)은 곧바로 찍는다.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: 그때그때의 sys.stdout
        self._lock = threading.Lock()
        self._order: deque[str] = deque()
        self._held: dict[str, list[str]] = {}
        self._finished: set[str] = set()

    def say(self, text: str = "") -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def plan(self, lessons: Sequence[str]) -> None:
        """보여 줄 순서를 정한다. 실습마다 머리줄로 시작하고, 맨 앞 실습의 머리줄은 곧바로 찍는다."""
        with self._lock:
            self._order = deque(lessons)
            self._held = {lesson: [] for lesson in lessons}
            self._finished = set()
            for lesson in lessons:
                self._emit(lesson, f"━━ {lesson} " + "━" * 50)

    def line(self, lesson: str, text: str) -> None:
        with self._lock:
            self._emit(lesson, text)

    def tagged(self, lesson: str, tag: str, line: str) -> None:
        self.line(lesson, f"{tag:<18}│ {line}")

    def finish(self, lesson: str, text: str) -> None:
        """lesson의 마지막 줄을 찍고, 그 뒤 실습들 가운데 차례가 된 것의 모아 둔 줄을 내보낸다."""
        with self._lock:
            self._emit(lesson, text)
            self._finished.add(lesson)
            while self._order and self._order[0] in self._finished:
                self._order.popleft()
                if self._order:
                    for held in self._held.pop(self._order[0], []):
                        print(held, file=self._stream, flush=True)

    def _emit(self, lesson: str, text: str) -> None:
        if self._order and lesson in self._order and lesson != self._order[0]:
            self._held[lesson].append(text)
        else:
            print(text, file=self._stream, flush=True)


@dataclass(frozen=True)
class Outcome:
    lesson: str
    ok: bool
    seconds: float  # 실습의 차례가 온 때부터 call_tasks 가 끝날 때까지
    detail: str
    ready_seconds: float = 0.0  # 그중 워커가 준비되기를 기다린 시간
    call_seconds: float = 0.0  # 그중 call_tasks 가 실행된 시간


class Lineup:
    """실습들의 워커를 차례에 앞서 띄우고, 끝난 실습의 워커를 뒤에서 멈춘다. 띄운 워커는 모두 기억한다."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._started: dict[str, list[Worker]] = {}
        self._stopping: list[threading.Thread] = []

    def start(self, lesson: str) -> list[Worker]:
        """lesson의 워커를 띄운다(준비를 기다리지 않는다). 이미 띄웠으면 그 워커들을 돌려준다."""
        with self._lock:
            if lesson not in self._started:
                workers = lesson_workers(
                    lesson, on_line=lambda worker, line: self.console.tagged(lesson, worker.name, line)
                )
                self._started[lesson] = workers
                for worker in workers:
                    worker.start()
            return self._started[lesson]

    def ready(self, lesson: str) -> list[Worker]:
        """lesson의 워커가 모두 준비될 때까지 기다린다. 띄우지 않았으면 지금 띄운다."""
        workers = self.start(lesson)
        for worker in workers:
            worker.wait_ready()
        return workers

    def retire(self, lesson: str, then: Callable[[], None]) -> None:
        """lesson의 워커를 뒤에서 멈추고(warm shutdown에 1~2초가 걸린다), 다 멈추면 then() 을 부른다."""
        workers = self.start(lesson)

        def stop_then() -> None:
            try:
                stop_all(workers)
            finally:
                then()

        thread = threading.Thread(target=stop_then, name=f"retire:{lesson}")
        thread.start()
        with self._lock:
            self._stopping.append(thread)

    def close(self) -> None:
        """멈추는 중인 워커가 다 끝나기를 기다리고, 아직 실행 중인 워커(미리 띄운 것 포함)를 멈춘다."""
        with self._lock:
            stopping = list(self._stopping)
            started = [worker for workers in self._started.values() for worker in workers]
        for thread in stopping:
            thread.join()
        stop_all(started)


def run_lessons(lessons: Sequence[str], console: Console, jobs: int = 1) -> list[Outcome]:
    """실습들을 한 번에 jobs 개까지 함께 실행한다. 출력은 실습 순서대로 나온다.

    돌아올 때는 띄운 워커가 모두 멈춰 있다.
    """
    console.plan(lessons)
    lineup = Lineup(console)
    queue = deque(lessons)  # 아직 아무도 맡지 않은 실습
    taken = threading.Lock()
    outcomes: dict[str, Outcome] = {}

    def take() -> tuple[str | None, str | None]:
        with taken:
            lesson = queue.popleft() if queue else None
            return lesson, (queue[0] if queue else None)

    def lane() -> None:
        while True:
            lesson, upcoming = take()
            if lesson is None:
                return
            try:
                outcome = _run_turn(lesson, upcoming, lineup, console)
            except Exception as exc:  # 실행기 자신의 오류도 그 실습의 실패로 보여 준다
                outcome = Outcome(lesson, False, 0.0, f"실행기 오류: {exc!r}")
            outcomes[lesson] = outcome
            mark = "통과" if outcome.ok else "실패"
            # 워커가 멈추며 남기는 로그까지 그 실습의 출력에 들어가도록, 다 멈춘 뒤에 실습을 끝낸다.
            summary = f"━━ {lesson}: {mark} ({outcome.seconds:.1f}초) — {outcome.detail}\n"
            lineup.retire(lesson, then=lambda lesson=lesson, summary=summary: console.finish(lesson, summary))

    lanes = [threading.Thread(target=lane, name=f"lane-{n}", daemon=True) for n in range(max(1, jobs))]
    try:
        for thread in lanes:
            thread.start()
        for thread in lanes:
            thread.join()
    finally:
        stop_running_calls()  # 멈추라는 신호를 받았으면 call_tasks 가 아직 실행 중이다
        lineup.close()
    return [outcomes[lesson] for lesson in lessons]


def run_lesson(lesson: str, console: Console) -> Outcome:
    return run_lessons([lesson], console)[0]


def _run_turn(lesson: str, upcoming: str | None, lineup: Lineup, console: Console) -> Outcome:
    started = time.monotonic()
    try:
        lineup.ready(lesson)
    except WorkerError as exc:
        return Outcome(lesson, False, time.monotonic() - started, f"워커가 뜨지 못했습니다: {exc}")
    ready = time.monotonic() - started
    if upcoming is not None:
        lineup.start(upcoming)  # 이 실습이 실행되는 동안 다음 실습의 워커가 뜬다
    result = run_call_tasks(lesson, on_line=lambda line: console.tagged(lesson, "call_tasks", line))
    seconds = time.monotonic() - started
    ok = result.returncode == 0
    detail = (
        f"워커 준비 대기 {ready:.1f}초, call_tasks {result.seconds:.1f}초"
        if ok
        else f"call_tasks 종료 코드 {result.returncode}"
    )
    return Outcome(lesson, ok, seconds, detail, ready_seconds=ready, call_seconds=result.seconds)


def main(argv: list[str] | None = None) -> int:
    lessons = available_lessons()
    parser = argparse.ArgumentParser(
        prog="python -m playground",
        description="실습의 워커를 띄우고 call_tasks 를 실행한 뒤 워커를 멈춥니다.",
    )
    parser.add_argument(
        "lesson",
        help=f"실습 이름이나 all, check를 주세요. check는 실습마다 빠진 것을 찾습니다. 있는 실습: {', '.join(lessons)}",
    )
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, metavar="N",
        help=f"한 번에 함께 실행할 실습 수입니다(기본 {DEFAULT_JOBS}). 출력은 언제나 실습 순서대로 나옵니다.",
    )  # fmt: skip
    args = parser.parse_args(argv)

    if args.lesson == "check":
        from playground.check import main as check

        return check()
    if args.lesson == "all":
        selected = lessons
    elif args.lesson in lessons:
        selected = [args.lesson]
    else:
        print(f"없는 실습입니다: {args.lesson}. 실습 이름이나 all을 주세요: {', '.join(lessons)}", file=sys.stderr)
        return EXIT_USAGE

    if args.jobs < 1:
        print(f"--jobs 는 1 이상이어야 합니다 (받은 값: {args.jobs})", file=sys.stderr)
        return EXIT_USAGE

    console = Console()
    problems = ensure_services(console.say)
    if problems:
        console.say("서비스가 준비되지 않아 실습을 시작하지 않습니다.\n")
        console.say("\n".join(problems))
        return EXIT_SERVICES_DOWN

    # SIGTERM도 Ctrl-C 처럼 다룬다. 실행 중인 call_tasks 와 띄운 워커, beat를 멈추고 끝내서 남는 프로세스가 없게 한다.
    exit_on_sigterm()
    started = time.monotonic()
    outcomes = run_lessons(selected, console, jobs=args.jobs)
    total = time.monotonic() - started
    if len(outcomes) > 1:
        console.say("요약")
        for outcome in outcomes:
            console.say(f"  {outcome.lesson}  {'통과' if outcome.ok else '실패'}  {outcome.seconds:5.1f}초")
        console.say(f"  전체  {total:.1f}초 (워커를 띄우고 멈추는 시간 포함, 한 번에 {args.jobs}개씩)")
    return 0 if all(o.ok for o in outcomes) else EXIT_LESSON_FAILED
