"""워커가 뜨는 데 걸리는 시간: 직접 치는 명령(mingle, gossip 포함) 대 실행기·테스트가 쓰는 명령.

    python -m benchmarks.worker_startup [-n 5] [--lesson practice00] [--json PATH]

하위 프로세스를 띄운 순간부터 워커가 "<노드> ready." 를 찍을 때까지를 잰다.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import EXIT_SERVICES_DOWN, report, services_down
from playground.workers import Worker

# 이름 → fast_start (--without-mingle --without-gossip 을 붙이는가)
VARIANTS = {
    "README command": False,
    "+ --without-mingle --without-gossip": True,
}


def measure(lesson: str, fast_start: bool) -> float:
    worker = Worker(lesson, fast_start=fast_start).start()
    try:
        return worker.wait_ready()
    finally:
        worker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker_startup", description=__doc__)
    parser.add_argument("-n", type=int, default=5, help="변형마다 띄울 횟수 (기본 5)")
    parser.add_argument("--lesson", default="practice00")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON으로도 쓴다")
    args = parser.parse_args(argv)
    if services_down():
        return EXIT_SERVICES_DOWN
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.n):  # 번갈아 띄워서 기계 상태의 변화가 한쪽에만 몰리지 않게 한다
        for name, fast in VARIANTS.items():
            samples[name].append(measure(args.lesson, fast_start=fast))
    report(f"worker start-up to 'ready.' ({args.lesson}, prefork -c 2)", samples, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
