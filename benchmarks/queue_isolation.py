"""느린 작업이 밀려 있을 때 급한 작업은 얼마나 기다리나: 큐를 나눈 경우 대 한 큐를 같이 쓰는 경우.

    python -m benchmarks.queue_isolation [-n 5] [--rounds 5] [--seconds 0.2] [--json PATH]

practice05의 워커 둘(high, low; 각각 풀 프로세스 하나)을 띄운다. 한 판마다 low 큐에 느린 보고서 n 개를 쌓고
곧바로 경보 하나를 보낸다. "separate" 는 경보를 high 큐로, "shared" 는 보고서와 같은 low 큐로 보낸다.
잰 값은 경보를 보낸 순간부터 경보 작업이 끝난 순간까지(같은 기계의 시계)다.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks import EXIT_SERVICES_DOWN, report, services_down
from playground.lessons import lesson_workers, purge
from playground.workers import running

WAIT_SECONDS = 60


def one_round(queue: str, backlog: int, seconds: float) -> float:
    from practice05.tasks import build_report, send_alert

    reports = [build_report.delay(seconds) for _ in range(backlog)]
    sent = time.time()
    alert = send_alert.apply_async(("benchmark",), queue=queue)
    latency = alert.get(timeout=WAIT_SECONDS)["finished_at"] - sent
    for backlog_task in reports:
        backlog_task.get(timeout=WAIT_SECONDS)
    return latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queue_isolation", description=__doc__)
    parser.add_argument("-n", type=int, default=5, help="low 큐에 쌓을 느린 작업 수 (기본 5)")
    parser.add_argument("--rounds", type=int, default=5, help="경우마다 반복할 판 수 (기본 5)")
    parser.add_argument("--seconds", type=float, default=0.2, help="느린 작업 하나의 길이 (기본 0.2초)")
    parser.add_argument("--json", metavar="PATH", help='결과를 JSON으로도 쓴다: {"separate": {…}, "shared": {…}}')
    args = parser.parse_args(argv)
    if services_down():
        return EXIT_SERVICES_DOWN
    purge("practice05")
    samples: dict[str, list[float]] = {"separate": [], "shared": []}
    with running(*lesson_workers("practice05")):
        for _ in range(args.rounds):  # 번갈아 재서 기계 상태의 변화가 한쪽에 몰리지 않게 한다
            samples["separate"].append(one_round("high", args.n, args.seconds))
            samples["shared"].append(one_round("low", args.n, args.seconds))
    report(f"urgent task latency with {args.n} x {args.seconds:g} s tasks queued on low", samples, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
