"""chord의 콜백이 마지막 header 작업이 끝난 뒤 얼마 만에 시작하는가: Redis 대 PostgreSQL 결과 백엔드.

    python -m benchmarks.chord_latency [-n 20] [--json PATH]

백엔드마다 practice03 워커를 하나 띄우고(PRACTICE03_BACKEND), 곧바로 끝나는 작업 4개짜리 chord를 n 번
차례로 실행한다. 잰 값은 콜백 merge가 시작한 시각 - header 작업 중 가장 늦게 끝난 시각(같은 기계의 시계)이다.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks import EXIT_SERVICES_DOWN, report, services_down
from playground import PROJECT_ROOT
from playground.workers import Worker, running

BACKENDS = ("redis", "postgres")
HEADER_SIZE = 4
CHORD_TIMEOUT_SECONDS = 30


def measure_here(n: int) -> list[float]:
    """이 프로세스의 PRACTICE03_BACKEND 로 chord를 n 번 실행하고 지연(초)들을 돌려준다."""
    from celery import chord

    from practice03.tasks import fetch, merge

    delays = []
    for _ in range(n):
        merged = chord(fetch.s(part, 0) for part in range(1, HEADER_SIZE + 1))(merge.s())
        value = merged.get(timeout=CHORD_TIMEOUT_SECONDS)
        delays.append(value["started_at"] - value["last_header_finished_at"])
    return delays


def measure(backend: str, n: int) -> list[float]:
    env = {"PRACTICE03_BACKEND": backend}
    # --purge: 지난 실행이 남긴 메시지를 지우고 시작한다(이 백엔드의 큐만).
    with running(Worker("practice03", env=env, extra_args=["--purge"])):
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.chord_latency", "--measure-here", "-n", str(n)],
            cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True,
            timeout=CHORD_TIMEOUT_SECONDS * (n + 1),
        )  # fmt: skip
    if child.returncode != 0:
        raise RuntimeError(f"{backend} measurement failed:\n{child.stdout}{child.stderr}")
    return json.loads(child.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chord_latency", description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="백엔드마다 실행할 chord 수 (기본 20)")
    parser.add_argument(
        "--json", metavar="PATH", help='결과를 JSON으로도 쓴다: {"redis": {"n", "p50", "p95", "max"}, …}'
    )
    parser.add_argument("--measure-here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_here:
        print(json.dumps(measure_here(args.n)))
        return 0
    if services_down():
        return EXIT_SERVICES_DOWN
    samples = {backend: measure(backend, args.n) for backend in BACKENDS}
    report(
        f"chord callback start after the last header task finished ({HEADER_SIZE} instant headers)", samples, args.json
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
