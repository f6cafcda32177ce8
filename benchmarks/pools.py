"""풀마다 CPU를 쓰는 일과 기다리는 일: 같은 작업 묶음이 끝나기까지의 시간.

    python -m benchmarks.pools [-n 8] [--concurrency 4] [--work 1500000] [--wait 0.2] [--json PATH]

풀마다 practice10의 워커를 새로 띄우고(prefork와 threads는 --concurrency, solo는 언제나 하나), 작업 n 개를
한꺼번에 보내 마지막 결과가 올 때까지를 잰다.

- cpu: `crunch(--work)` 는 파이썬 계산(제곱의 합)이다. 풀 프로세스는 저마다 코어 하나를 쓴다. 스레드는 GIL을
  번갈아 잡으므로 파이썬 계산이 동시에 실행되지 않는다.
- io: `wait_io(--wait)` 는 기다리기만 한다. 네트워크나 디스크를 기다리는 일이라 CPU를 쓰지 않는다.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks import EXIT_SERVICES_DOWN, services_down
from playground.lessons import purge
from playground.workers import Worker, running

LESSON = "practice10"
POOLS = ("prefork", "threads", "solo")
WAIT_SECONDS = 120


def batch_seconds(task, arg, n: int) -> float:
    started = time.monotonic()
    for result in [task.delay(arg) for _ in range(n)]:
        result.get(timeout=WAIT_SECONDS)
    return time.monotonic() - started


def one_pool(pool: str, concurrency: int, n: int, work: int, wait: float) -> dict:
    from practice10.tasks import crunch, wait_io

    purge(LESSON)
    with running(Worker(LESSON, pool=pool, concurrency=concurrency)):
        crunch.delay(1).get(timeout=WAIT_SECONDS)  # 풀을 데운다
        cpu = batch_seconds(crunch, work, n)
        io = batch_seconds(wait_io, wait, n)
    return {
        "pool": pool,
        "concurrency": 1 if pool == "solo" else concurrency,
        # 잰 값을 그대로 두고 찍을 때만 반올림한다. 작은 크기의 smoke test에서 0.00으로 뭉개지지 않게.
        "cpu_s": cpu,
        "io_s": io,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pools", description=__doc__)
    parser.add_argument("-n", type=int, default=8, help="묶음마다 보낼 작업 수 (기본 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="prefork와 threads의 --concurrency (기본 4)")
    parser.add_argument("--work", type=int, default=1_500_000, help="crunch의 크기 (기본 1500000)")
    parser.add_argument("--wait", type=float, default=0.2, help="wait_io 가 기다리는 초 (기본 0.2)")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON 으로도 쓴다: 풀마다 한 행의 목록")
    args = parser.parse_args(argv)
    if services_down():
        return EXIT_SERVICES_DOWN
    rows = [one_pool(pool, args.concurrency, args.n, args.work, args.wait) for pool in POOLS]
    print(f"{args.n} tasks per batch; cpu: crunch({args.work}), io: wait_io({args.wait:g}); {os.cpu_count()} CPUs")
    print(f"{'pool':<8}  {'concurrency':>11}  {'cpu s':>6}  {'io s':>6}")
    for row in rows:
        print(f"{row['pool']:<8}  {row['concurrency']:>11}  {row['cpu_s']:>6.2f}  {row['io_s']:>6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
