"""강좌 전체(python -m playground all)는 얼마나 걸리고, 그중 얼마가 실습이 일부러 기다리는 시간인가.

    python -m benchmarks.course_speed [--jobs 1 2] [--json PATH]

--jobs 의 값마다 실행기와 똑같이 모든 실습을 처음부터 끝까지 실행한다. 워커를 띄우고, call_tasks 를 실행하고,
워커를 멈추는 것까지 한다. 잰 값은 시작부터 마지막 워커가 멈출 때까지의 벽시계 시간이다.

"일부러 기다리는 시간"은 각 실습의 lesson.py 가 NEEDS.waits 에 상수로 적은 값이다. call_tasks 가 결과를 기다리는
길 위에 놓인 sleep, countdown, 시간 제한, 재시도 간격, 끝까지 기다려 보는 timeout이 여기에 든다. 나란히 실행되는
작업들은 가장 긴 것 하나만 센다. 상수를 바꾸면 이 값도 따라 바뀐다.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

from benchmarks import EXIT_SERVICES_DOWN, services_down
from course import needs_of
from playground.lessons import available_lessons
from playground.runner import Console, Outcome, run_lessons


def deliberate_waits() -> dict[str, float]:
    """실습 이름 → 그 실습이 일부러 기다리는 시간(초). 실습의 lesson.py 가 NEEDS.waits 에 적은 값의 합이다."""
    return {lesson: needs_of(lesson).wait_seconds for lesson in available_lessons()}


def run_course(jobs: int) -> tuple[float, list[Outcome]]:
    """실행기처럼 모든 실습을 실행하고 (벽시계 초, 실습별 결과)를 돌려준다. 실습 출력은 찍지 않는다."""
    started = time.monotonic()
    outcomes = run_lessons(available_lessons(), Console(stream=io.StringIO()), jobs=jobs)
    return time.monotonic() - started, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.course_speed", description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="한 번에 함께 실행할 실습 수들 (기본 1 2)")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON으로도 쓴다")
    args = parser.parse_args(argv)
    if services_down():
        return EXIT_SERVICES_DOWN

    waits = deliberate_waits()
    total_waits = sum(waits[lesson] for lesson in available_lessons())
    runs = {}
    for jobs in args.jobs:
        wall, outcomes = run_course(jobs)
        runs[jobs] = {
            "wall": wall,
            "ratio": wall / total_waits,
            "ok": all(outcome.ok for outcome in outcomes),
            "lessons": {
                o.lesson: {"ok": o.ok, "seconds": o.seconds, "ready": o.ready_seconds, "call_tasks": o.call_seconds}
                for o in outcomes
            },
        }

    print("python -m playground all: wall time against the lessons' deliberate waits")
    print(f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
          f"python {platform.python_version()}")  # fmt: skip
    print(f"{'jobs':>4}  {'wall s':>7}  {'waits s':>7}  {'wall/waits':>10}  all passed")
    for jobs, run in runs.items():
        print(f"{jobs:>4}  {run['wall']:7.1f}  {total_waits:7.1f}  {run['ratio']:10.2f}  {run['ok']}")
    print()
    print("per lesson (s): waits / worker-ready wait / call_tasks, for each jobs value")
    for lesson in available_lessons():
        cells = "  ".join(
            f"jobs={jobs}: {run['lessons'][lesson]['ready']:4.1f} {run['lessons'][lesson]['call_tasks']:5.1f}"
            for jobs, run in runs.items()
        )
        print(f"{lesson}  waits {waits[lesson]:4.1f}  {cells}")

    if args.json:
        Path(args.json).write_text(json.dumps({"waits": waits, "runs": runs}, indent=2) + "\n")
    return 0 if all(run["ok"] for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
