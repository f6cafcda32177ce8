"""배포 도중에 멈춘 워커가 무엇을 잃고 무엇을 두 번 하나: 멈추는 방법 둘과 ack 설정 둘을 나란히.

    python -m benchmarks.deploy [-n 20] [--concurrency 4] [--seconds 4] [--grace 3] [--soft 1] [--json PATH]

practice13의 작업을 시작 시 ack(work)와 완료 후 ack(work_acks_late)로 n 개씩 섞어 보낸다. 작업은 시작하고 1초 뒤
멱등한 효과를 남긴다(run마다 한 번만 남는 Redis 키). 풀 프로세스가 모두 차면 배포 도구처럼 옛 워커에 SIGTERM을
보내고, --grace 초가 지나도 살아 있으면 프로세스 그룹째 SIGKILL을 보낸다. 그리고 새 워커를 띄워 끝까지 실행한다.
배포는 두 번이다.

1. warm shutdown: 기본 워커. 유예 시간보다 긴 작업이 실행 중이면 SIGKILL을 맞는다.
2. soft shutdown: REMAP_SIGTERM=SIGQUIT, worker_soft_shutdown_timeout=--soft 로 띄운 워커(1의 새 워커).

설정마다(멈추는 방법 × ack):
- finished: 끝까지 실행된 작업 수
- lost: n - finished (끝까지 실행되지 못한 작업. 다시 실행되었다가 또 끊긴 작업도 센다)
- ran_twice: 두 번 이상 시작한 작업 수 (끊긴 뒤 다시 실행된 것)
- effects: 실행 기록의 '효과' 줄 수. 효과가 멱등하지 않아 다시 실행될 때마다 남는다면 n보다 커진다
- stopped_by: 옛 워커가 멈춘 방법 (itself: 유예 시간 안에 스스로 / SIGKILL)
- stop_seconds: SIGTERM을 보내고 옛 워커의 메인 프로세스가 끝나기까지 걸린 시간(초). SIGKILL이면 유예 시간과 거의 같다
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks import EXIT_SERVICES_DOWN, services_down
from course import NotInTime, wait_until
from playground.broker import queue_counts
from playground.workers import Worker

LESSON = "practice13"
SETTLE_SECONDS = 1.5  # 큐가 비고 실행 기록이 이만큼 늘지 않으면 끝
DEADLINE_SECONDS = 300
ACKS = ("early ack", "acks_late")


def _stop_like_a_deploy_tool(old: Worker, grace: float) -> tuple[str, float]:
    """SIGTERM을 보내고 grace 초 안에 끝나지 않으면 프로세스 그룹째 SIGKILL. (멈춘 방법, 걸린 초)를 돌려준다."""
    signalled = time.monotonic()
    os.kill(old.proc.pid, signal.SIGTERM)
    try:
        old.proc.wait(grace)
        return "itself", round(time.monotonic() - signalled, 2)
    except subprocess.TimeoutExpired:
        os.killpg(old.proc.pid, signal.SIGKILL)
        old.proc.wait()
        return "SIGKILL", round(time.monotonic() - signalled, 2)
    finally:
        old.stop()


def _worker(concurrency: int, soft: float, remap: bool) -> Worker:
    env = {"PRACTICE13_SOFT_SHUTDOWN_SECONDS": str(soft), **({"REMAP_SIGTERM": "SIGQUIT"} if remap else {})}
    worker = Worker(LESSON, concurrency=concurrency, env=env)
    worker.start()
    worker.wait_ready()
    return worker


def _entries(runs: dict[str, list[str]]) -> dict[str, list[list[tuple[str, float]]]]:
    """ack마다, 작업마다 실행 기록의 (what, 시각) 목록."""
    from practice13.tasks import journal

    return {ack: [[(e.what, e.at) for e in journal.read(run)] for run in ack_runs] for ack, ack_runs in runs.items()}


def _whats(entries: list[tuple[str, float]]) -> list[str]:
    return [what for what, _ in entries]


def one_deploy(
    name: str, old: Worker, n: int, concurrency: int, seconds: float, grace: float, soft: float
) -> tuple[list[dict], Worker]:
    from practice13.tasks import app, work, work_acks_late

    app.control.purge()
    base = uuid.uuid4().hex
    runs = {ack: [f"{base}:{ack}:{i}" for i in range(n)] for ack in ACKS}
    started = time.monotonic()
    for i in range(n):
        work.delay(runs["early ack"][i], seconds)
        work_acks_late.delay(runs["acks_late"][i], seconds)

    def pool_full() -> bool:
        return sum("시작" in _whats(e) for rows in _entries(runs).values() for e in rows) >= concurrency

    wait_until(pool_full, "풀 프로세스가 모두 참", _left(started))
    stopped_by, stop_seconds = _stop_like_a_deploy_tool(old, grace)
    new = _worker(concurrency, soft, remap=True)
    seen = {"counts": None, "changed_at": time.monotonic()}

    def done(entries: list[tuple[str, float]]) -> bool:
        # 끝났거나, 마지막으로 시작한 실행이 끝날 때를 넘겨도 끝나지 않았다(그 실행은 끊겼고 돌아오지 않았다).
        starts = [at for what, at in entries if what == "시작"]
        return "끝" in _whats(entries) or (bool(starts) and time.time() - starts[-1] > seconds + SETTLE_SECONDS)

    def settled() -> bool:
        entries = _entries(runs)
        counts = {ack: [_whats(e) for e in rows] for ack, rows in entries.items()}
        if counts != seen["counts"]:
            seen.update(counts=counts, changed_at=time.monotonic())
            return False
        quiet = time.monotonic() - seen["changed_at"] >= SETTLE_SECONDS and queue_counts(LESSON)[0] == 0
        return quiet and all(done(e) for rows in entries.values() for e in rows)

    wait_until(settled, "새 워커가 남은 작업을 다 실행함", _left(started))
    rows = []
    for ack, whats in seen["counts"].items():
        finished = sum("끝" in w for w in whats)
        rows.append({
            "shutdown": name,
            "ack": ack,
            "n": n,
            "finished": finished,
            "lost": n - finished,
            "ran_twice": sum(w.count("시작") >= 2 for w in whats),
            "effects": sum(w.count("효과") for w in whats),
            "stopped_by": stopped_by,
            "stop_seconds": stop_seconds,
        })  # fmt: skip
    return rows, new


def _left(started: float) -> float:
    """DEADLINE_SECONDS 가운데 남은 시간(초)."""
    return max(0.0, DEADLINE_SECONDS - (time.monotonic() - started))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deploy", description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="설정마다 보낼 작업 수 (기본 20)")
    parser.add_argument("--concurrency", type=int, default=4, help="워커의 풀 프로세스 수 (기본 4)")
    parser.add_argument("--seconds", type=float, default=4, help="작업 하나의 시간 (기본 4초, 1초보다 길게)")
    parser.add_argument("--grace", type=float, default=3, help="SIGTERM 뒤 SIGKILL까지의 유예 시간 (기본 3초)")
    parser.add_argument("--soft", type=float, default=1, help="worker_soft_shutdown_timeout (기본 1초)")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON 으로도 쓴다: 설정마다 한 행의 목록")
    args = parser.parse_args(argv)
    if not args.soft < args.grace < args.seconds:
        parser.error("needs --soft < --grace < --seconds (a task longer than the grace period)")
    if services_down():
        return EXIT_SERVICES_DOWN
    workers = []
    try:
        old = _worker(args.concurrency, args.soft, remap=False)
        workers.append(old)
        rows = []
        for name in ("warm", "soft (REMAP_SIGTERM=SIGQUIT)"):
            deployed, old = one_deploy(name, old, args.n, args.concurrency, args.seconds, args.grace, args.soft)
            workers.append(old)
            rows += deployed
    except NotInTime as exc:
        print(f"deploy: not finished within {DEADLINE_SECONDS} s: {exc}", file=sys.stderr)
        return 1
    finally:
        for worker in workers:
            worker.stop()
    print(
        f"{args.n} tasks per setting ({args.seconds:g} s each), concurrency {args.concurrency}; "
        f"SIGTERM once mid-run, SIGKILL after a {args.grace:g} s grace period, then a new worker"
    )
    header = ("shutdown", "ack", "n", "finished", "lost", "ran_twice", "effects", "stopped_by", "stop_seconds")
    widths = {key: max(len(key), *(len(str(row[key])) for row in rows)) for key in header}
    print("  ".join(f"{key:<{widths[key]}}" for key in header))
    for row in rows:
        print("  ".join(f"{row[key]!s:<{widths[key]}}" for key in header))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
