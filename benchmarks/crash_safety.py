"""워커째 죽었을 때 무엇을 잃고 무엇을 두 번 하나: ack 설정 셋을 나란히.

    python -m benchmarks.crash_safety [-n 1000] [--seconds 0.02] [--json PATH]

설정마다 practice08의 결제 작업 n 개를 보낸다. 결제 작업은 멱등하고(INSERT … ON CONFLICT DO NOTHING), 실행할
때마다 실행 기록을 한 행 더한다. 절반쯤 실행됐을 때 워커를 프로세스 그룹째 kill -9 하고, 새 워커를 띄워 끝까지
실행한다. 큐가 비고 실행 기록이 더 늘지 않으면 끝난 것으로 본다.

- effects: 결제 표에 남은 행 수 (멱등한 표라 두 번 실행되어도 한 행)
- executions: 실행 횟수 (n + 두 번 실행된 것)
- lost: n - effects (한 번도 끝나지 않은 작업)
- tasks_per_s: effects / (첫 작업을 보낸 때부터 마지막 실행 기록까지의 초)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from benchmarks import EXIT_SERVICES_DOWN, services_down
from course import NotInTime, wait_until
from playground.broker import queue_counts
from playground.lessons import lesson_workers, purge
from playground.workers import running

LESSON = "practice08"
SETTINGS = {  # 이름 → practice08.tasks 의 작업 이름
    "early ack (default)": "charge_early_ack",
    "acks_late": "charge_late_ack",
    "acks_late + reject_on_worker_lost": "charge",
}
SETTLE_SECONDS = 1.5  # 큐가 비고 실행 기록이 이만큼 늘지 않으면 끝
DEADLINE_SECONDS = 300


def one_setting(name: str, task_name: str, n: int, seconds: float) -> dict:
    import practice08.tasks as lesson

    task = getattr(lesson, task_name)
    run = str(uuid.uuid4())
    purge(LESSON)
    started = time.monotonic()
    (worker,) = lesson_workers(LESSON)
    with running(worker):
        for payment_id in range(n):
            task.delay(run, payment_id, seconds=seconds)
        wait_until(lambda: lesson.effects(run)[2] >= n // 2, "작업 절반의 실행", _left(started))
        worker.kill()  # kill -9 워커의 프로세스 그룹: 메인 프로세스와 풀 자식 모두
    with running(*lesson_workers(LESSON)):
        seen = {"counts": None, "changed_at": time.monotonic()}

        def settled() -> bool:
            counts = lesson.effects(run)
            if counts != seen["counts"]:
                seen.update(counts=counts, changed_at=time.monotonic())
                return False
            # 숫자가 SETTLE_SECONDS 동안 그대로이고 배달을 기다리는 메시지도 없다
            return time.monotonic() - seen["changed_at"] >= SETTLE_SECONDS and queue_counts(LESSON)[0] == 0

        wait_until(settled, "새 워커가 남은 작업을 다 실행함", _left(started))
    last, changed_at = seen["counts"], seen["changed_at"]
    effects, _, executions = last
    return {
        "setting": name,
        "n": n,
        "effects": effects,
        "executions": executions,
        "lost": n - effects,
        "tasks_per_s": round(effects / (changed_at - started), 1),
    }


def _left(started: float) -> float:
    """DEADLINE_SECONDS 가운데 남은 시간(초)."""
    return max(0.0, DEADLINE_SECONDS - (time.monotonic() - started))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crash_safety", description=__doc__)
    parser.add_argument("-n", type=int, default=1000, help="설정마다 보낼 작업 수 (기본 1000)")
    parser.add_argument("--seconds", type=float, default=0.02, help="작업 하나가 일하는 시간 (기본 0.02초)")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON 으로도 쓴다: 설정마다 한 행의 목록")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("-n must be at least 2 (the worker is killed after half of them ran)")
    if services_down():
        return EXIT_SERVICES_DOWN
    from practice08.tasks import create_tables

    create_tables()
    try:
        rows = [one_setting(name, task_name, args.n, args.seconds) for name, task_name in SETTINGS.items()]
    except NotInTime as exc:
        print(f"crash_safety: not finished within {DEADLINE_SECONDS} s: {exc}", file=sys.stderr)
        return 1
    print(f"{args.n} tasks per setting, worker killed (kill -9, whole process group) once mid-run and restarted")
    width = max(len(row["setting"]) for row in rows)
    print(f"{'setting':<{width}}  {'n':>6}  {'effects':>7}  {'executions':>10}  {'lost':>5}  {'tasks/s':>7}")
    for row in rows:
        print(
            f"{row['setting']:<{width}}  {row['n']:>6}  {row['effects']:>7}  {row['executions']:>10}  "
            f"{row['lost']:>5}  {row['tasks_per_s']:>7.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
