"""practice14: 멈춘 워커를 RabbitMQ가 알아채는 시간(broker_heartbeat 마다), 그리고 쿼럼 큐의 리더 노드를 멈출 때
작업이 어떻게 되는지(보낸 수, 실행된 수, 잃은 수, 중복, 멈춘 시간).

    python -m benchmarks.failover [--heartbeats 1 2 4] [--rounds 3] [-n 500] [--keep-leader] [--json PATH]

- frozen worker: 같은 큐를 소비하는 practice14 워커 둘에서 작업(acks_late)을 받은 쪽을 프로세스 그룹째 SIGSTOP 한다.
  그 작업이 다른 워커에서 다시 시작하기까지의 초를 잰다. 그다음 SIGCONT로 깨우고 다음 회차로 간다.
- leader stop: `.ci/services cluster` 의 노드 세 개(없으면 띄우고 그 시간도 찍는다)에서, 쿼럼 큐의 리더 노드에 먼저
  연결한 워커에게 작업 n 개를 보내고, 몇 개가 실행된 뒤 리더 노드를 멈춘다. 보내는 쪽도 리더 노드에 연결해 있다가
  남은 절반을 보낸다. pause는 이어진 두 실행 사이의 가장 긴 틈이다(워커가 다른 노드로 옮겨 가는 시간).
  --keep-leader 면 노드를 멈추지 않고 같은 흐름만 돈다(stop_node_s 는 null). 테스트가 코드 경로를 싸게 확인할 때 쓴다.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks import EXIT_SERVICES_DOWN, services_down
from course import NotInTime, wait_until
from playground import cluster
from playground.lessons import purge
from playground.workers import Worker, running

LESSON = "practice14"
DEADLINE_SECONDS = 120  # 회차 하나가 끝나기까지의 상한
REJOIN_SECONDS = 60


def frozen_worker(heartbeat: float, rounds: int) -> dict:
    """heartbeat 초로 띄운 워커 둘에서 rounds 번 멈춰 보고, 재전달까지의 초들을 돌려준다."""
    from practice14.tasks import journal, work

    purge(LESSON)
    env = {"FAILOVER_HEARTBEAT_SECONDS": str(heartbeat)}
    workers = [Worker("benchmarks", module="failover_app", concurrency=None, env=env) for _ in range(2)]
    seconds = []
    with running(*workers):
        for _ in range(rounds):
            run = journal.new_run()
            work.delay(run, 1)
            started = journal.wait_for(run, 1, timeout=DEADLINE_SECONDS)[0]
            frozen = next(worker for worker in workers if started.pid in worker.pids())
            os.killpg(frozen.proc.pid, signal.SIGSTOP)
            frozen_at = time.time()
            try:
                again = journal.wait_for(run, 2, what="시작", timeout=DEADLINE_SECONDS)[-1]
            finally:
                os.killpg(frozen.proc.pid, signal.SIGCONT)
            seconds.append(again.at - frozen_at)
            journal.wait_for(run, 2, what="끝", timeout=DEADLINE_SECONDS)  # 두 실행이 모두 끝난 뒤 다음 회차
    return {
        "heartbeat_s": heartbeat,
        "n": len(seconds),
        "p50_s": round(statistics.median(seconds), 2),
        "max_s": round(max(seconds), 2),
        "p50_per_heartbeat": round(statistics.median(seconds) / heartbeat, 2),
    }


def leader_stop(n: int, stop: bool = True) -> dict:
    from practice14.cluster_tasks import QUORUM_QUEUE, app, journal, record

    with app.connection_for_write(cluster.urls()[0]) as conn:
        QUORUM_QUEUE.bind(conn.default_channel).declare()
        conn.default_channel.queue_purge(QUORUM_QUEUE.name)
    old = cluster.leader(QUORUM_QUEUE.name)
    first = cluster.urls_starting_with(old)
    worker = Worker(LESSON, module="cluster_tasks", queues=(QUORUM_QUEUE.name,), env={"RABBITMQ_CLUSTER_URLS": first})
    run = journal.new_run()
    try:
        with running(worker), app.connection_for_write(first) as sender:
            for number in range(n // 2):
                record.apply_async((run, number), connection=sender)
            wait_until(lambda: len(journal.read(run)) >= min(10, n // 4), "처음 몇 작업의 실행", DEADLINE_SECONDS)
            stop_seconds = cluster.stop_node(old) if stop else None
            for number in range(n // 2, n):
                record.apply_async((run, number), connection=sender)
            wait_until(lambda: len({e["number"] for e in journal.read(run)}) >= n, f"작업 {n}개", DEADLINE_SECONDS)
        entries = journal.read(run)
    finally:
        if stop:
            cluster.start_node(old)
    numbers = Counter(entry["number"] for entry in entries)
    times = sorted(entry.at for entry in entries)
    return {
        "n": n,
        "ran": len(numbers),
        "lost": n - len(numbers),
        "duplicates": sum(numbers.values()) - len(numbers),
        "pause_s": round(max(b - a for a, b in itertools.pairwise(times)), 2),
        "stop_node_s": round(stop_seconds, 2) if stop else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__)
    parser.add_argument("--heartbeats", type=float, nargs="+", default=[1, 2, 4], help="broker_heartbeat 값들(초)")
    parser.add_argument("--rounds", type=int, default=3, help="heartbeat 값마다 멈춰 보는 횟수 (기본 3)")
    parser.add_argument("-n", type=int, default=500, help="리더 노드를 멈추는 동안 보내는 작업 수 (기본 500)")
    parser.add_argument("--keep-leader", action="store_true", help="리더 노드를 멈추지 않는다 (코드 경로만 확인)")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON 으로도 쓴다")
    args = parser.parse_args(argv)
    if services_down():
        return EXIT_SERVICES_DOWN
    try:
        frozen = [frozen_worker(heartbeat, args.rounds) for heartbeat in args.heartbeats]
        cluster_start_s = round(cluster.start(), 1) if not cluster.is_running() else None
        leader = leader_stop(args.n, stop=not args.keep_leader)
    except (NotInTime, cluster.ClusterError) as exc:
        print(f"failover: {exc}", file=sys.stderr)
        return 1
    print("frozen worker (SIGSTOP on its process group): seconds until another worker starts its acks_late task")
    print(f"{'heartbeat s':>11}  {'n':>3}  {'p50 s':>6}  {'max s':>6}  {'p50/heartbeat':>13}")
    for row in frozen:
        print(
            f"{row['heartbeat_s']:>11g}  {row['n']:>3}  {row['p50_s']:>6.2f}  {row['max_s']:>6.2f}  "
            f"{row['p50_per_heartbeat']:>13.2f}"
        )
    started = f"started in {cluster_start_s} s" if cluster_start_s is not None else "already running"
    stopped = "kept running (--keep-leader)" if args.keep_leader else "stopped while tasks flow"
    print(f"\nquorum queue leader node {stopped} (three-node cluster, {started})")
    print(f"{'n':>6}  {'ran':>6}  {'lost':>5}  {'duplicates':>10}  {'pause s':>7}  {'stop-node s':>11}")
    print(
        f"{leader['n']:>6}  {leader['ran']:>6}  {leader['lost']:>5}  {leader['duplicates']:>10}  "
        f"{leader['pause_s']:>7.2f}  {leader['stop_node_s'] or 0:>11.2f}"
    )
    if args.json:
        rows = {"frozen_worker": frozen, "leader_stop": leader, "cluster_start_s": cluster_start_s}
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
