"""rate_limit 은 요청한 만큼 나오나: 요청한 속도 대 실제 속도, 워커 하나와 둘.

    python -m benchmarks.rate_limit [--rates 60/m 5/s 10/s] [--workers 1 2] [--seconds 6] [--json PATH]

경우마다 practice10의 워커를 새로 띄우고(풀 프로세스 둘), `limited` 작업의 rate_limit 을 제어 명령
(`app.control.rate_limit`)으로 바꾼 뒤, 요청한 속도 × 워커 수로 `--seconds` 초 동안 실행될 만큼 작업을 한꺼번에 보낸다.
작업이 실행된 시각(같은 기계의 시계)으로 잰다. 2 × `--seconds` 초가 지나도 다 끝나지 않으면 거기서 끊는다.

- requested/s: 요청한 속도 × 워커 수 (rate_limit 은 워커마다의 제한이다)
- achieved/s: 처음부터 `--seconds` 초 동안 실행된 수 ÷ `--seconds`
- done: 2 × `--seconds` 초 안에 실행된 수 / 보낸 수
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from contextlib import suppress
from pathlib import Path

from benchmarks import EXIT_SERVICES_DOWN, services_down
from course import NotInTime
from playground.lessons import purge
from playground.workers import Worker, running

LESSON = "practice10"
UNITS = {"s": 1, "m": 60, "h": 3600}


def per_second(rate: str) -> float:
    """'10/s', '60/m' → 초당 수."""
    count, unit = rate.split("/")
    return float(count) / UNITS[unit]


def one_case(rate: str, workers: int, seconds: float) -> dict:
    from practice10.tasks import app, journal, limited

    purge(LESSON)
    requested = per_second(rate) * workers
    n = math.ceil(requested * seconds)
    with running(*(Worker(LESSON) for _ in range(workers))) as started:
        nodes = [worker.node for worker in started]
        app.control.rate_limit(limited.name, rate, destination=nodes, reply=True, timeout=2)
        run = journal.new_run()
        sent = time.time()
        for _ in range(n):
            limited.delay(run)
        with suppress(NotInTime):  # 다 오지 않았어도 온 만큼으로 잰다
            journal.wait_for(run, n, timeout=2 * seconds)
        stamps = sorted(entry.at for entry in journal.read(run))
        purge(LESSON)
    first = stamps[0] if stamps else sent
    in_window = sum(1 for stamp in stamps if stamp < first + seconds)
    return {
        "rate": rate,
        "workers": workers,
        "requested_per_s": round(requested, 2),
        "achieved_per_s": round(in_window / seconds, 2),
        "done": len(stamps),
        "sent": n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rate_limit", description=__doc__)
    parser.add_argument("--rates", nargs="+", default=["60/m", "5/s", "10/s"], help="재볼 rate_limit 값들")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="워커 수들 (기본 1 2)")
    parser.add_argument("--seconds", type=float, default=6, help="경우마다 재는 시간 (기본 6초)")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON 으로도 쓴다: 경우마다 한 행의 목록")
    args = parser.parse_args(argv)
    for rate in args.rates:
        if not (len(rate.split("/")) == 2 and rate.split("/")[1] in UNITS and rate.split("/")[0].isdigit()):
            parser.error(f"rate must look like 10/s, 60/m or 100/h: {rate!r}")
    if services_down():
        return EXIT_SERVICES_DOWN
    rows = [one_case(rate, workers, args.seconds) for rate in args.rates for workers in args.workers]
    print(f"rate_limit of practice10.tasks.limited, measured over {args.seconds:g} s per case")
    print(f"{'rate_limit':>10}  {'workers':>7}  {'requested/s':>11}  {'achieved/s':>10}  {'done':>9}")
    for row in rows:
        done = f"{row['done']}/{row['sent']}"
        print(
            f"{row['rate']:>10}  {row['workers']:>7}  {row['requested_per_s']:>11.2f}  "
            f"{row['achieved_per_s']:>10.2f}  {done:>9}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
