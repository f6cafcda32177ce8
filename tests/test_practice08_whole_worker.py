"""practice08 README: 워커를 프로세스 그룹째 kill -9 하면 — 시작 시 ack 대 acks_late. 그리고 --max-tasks-per-child.

이 모듈의 테스트는 워커를 스스로 띄우고 죽인다. test_practice08 의 모듈 워커가 같은 큐를 소비하지 않도록 모듈을 나눴다.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

import global_config
from course import never_within, wait_until
from playground import PROJECT_ROOT
from playground.broker import management, quoted, vhost
from playground.lessons import lesson_workers, purge, worker_on_empty_queue
from playground.workers import Worker, running
from practice08.tasks import early_ack, grow, journal, late_ack, late_ack_requeued
from tests import WAIT_SECONDS
from tests.readme import ReadmeWorker, readme
from tests.test_practice08 import REDELIVERY_WINDOW_SECONDS

LESSON = "practice08"
LONG_SECONDS = 3  # 워커째 죽일 때 실행 중이어야 하는 작업의 길이


def _send_long(task, count):
    run_ids = [str(uuid.uuid4()) for _ in range(count)]
    results = [task.delay(run_id, crash=False, seconds=LONG_SECONDS) for run_id in run_ids]
    return run_ids, results


@pytest.mark.parametrize("task", [early_ack, late_ack], ids=["early_ack", "late_ack"])
def test_killing_the_whole_worker(task):
    # 풀 프로세스 둘이 하나씩 실행 중이고 둘은 미리 받아 둔(prefetch) 상태에서 워커를 프로세스 그룹째 kill -9.
    purge(LESSON)
    (first,) = lesson_workers(LESSON)
    with running(first):
        run_ids, results = _send_long(task, 4)
        wait_until(lambda: sum(len(journal.read(run_id)) for run_id in run_ids) >= 2, "시작한 작업 두 개", WAIT_SECONDS)
        running_ids = [run_id for run_id in run_ids if journal.read(run_id)]
        first.kill()
    with running(*lesson_workers(LESSON)):
        if task is late_ack:
            # acks_late: ack 하지 않은 메시지는 모두(실행 중이던 것도) 큐로 돌아가 새 워커가 실행한다.
            expected = [f"끝남: {2 if run_id in running_ids else 1}번째 실행" for run_id in run_ids]
            assert [r.get(timeout=WAIT_SECONDS) for r in results] == expected
            for run_id in running_ids:
                assert [run["redelivered"] for run in journal.read(run_id)] == [False, True]
        else:
            # 시작 시 ack: 실행 중이던 둘은 ack 된 뒤라 잃는다. state는 STARTED에서 멈춘다(task_track_started).
            waiting = [r for r, run_id in zip(results, run_ids, strict=True) if run_id not in running_ids]
            assert [r.get(timeout=WAIT_SECONDS) for r in waiting] == ["끝남: 1번째 실행"] * 2
            lost = [r for r, run_id in zip(results, run_ids, strict=True) if run_id in running_ids]
            assert [r.state for r in lost] == ["STARTED", "STARTED"]
            never_within(
                REDELIVERY_WINDOW_SECONDS, lambda: {r.state for r in lost} - {"STARTED"}, "잃은 작업의 상태 변화"
            )
            # Redis 결과 백엔드: STARTED 키도 result_expires(기본 1일)가 지나면 사라지고, 그 뒤에는 PENDING.
            client = redis.Redis.from_url(global_config.REDIS_URL)
            keys = [f"celery-task-meta-{r.id}" for r in lost]
            assert all(0 < client.ttl(key) <= 86400 for key in keys)
            for key in keys:
                client.pexpire(key, 1)
            time.sleep(0.05)
            assert [type(r)(r.id).state for r in lost] == ["PENDING", "PENDING"]
            client.close()
            assert [len(journal.read(run_id)) for run_id in running_ids] == [1, 1]
        # 미리 받아 두었던 메시지는 어느 쪽이든 다시 배달된다(redelivered=True).
        for run_id in run_ids:
            if run_id not in running_ids:
                assert [run["redelivered"] for run in journal.read(run_id)] == [True]


def test_max_tasks_per_child_replaces_the_pool_process_after_each_task():
    # README의 한 줄: --max-tasks-per-child=N 이면 풀 프로세스가 작업 N 개를 한 뒤 새 프로세스로 바뀐다.
    with worker_on_empty_queue(LESSON, concurrency=1, extra_args=["--max-tasks-per-child=1"]):
        run_ids = [str(uuid.uuid4()) for _ in range(3)]
        for run_id in run_ids:
            early_ack.delay(run_id, crash=False, seconds=0).get(timeout=WAIT_SECONDS)
        pids = [journal.read(run_id)[0].pid for run_id in run_ids]
    assert len(set(pids)) == 3


def test_a_cold_shutdown_sends_the_running_acks_late_task_back_to_the_queue():
    purge(LESSON)
    run_id = str(uuid.uuid4())
    (first,) = lesson_workers(LESSON)
    with running(first):
        result = late_ack_requeued.delay(run_id, crash=False, seconds=LONG_SECONDS)
        journal.wait_for(run_id, 1, timeout=WAIT_SECONDS)
        first.proc.send_signal(signal.SIGQUIT)  # cold shutdown: 실행 중인 작업을 끝까지 기다리지 않는다
        first.proc.wait(WAIT_SECONDS)
    with running(*lesson_workers(LESSON)):
        assert result.get(timeout=WAIT_SECONDS + LONG_SECONDS) == "끝남: 2번째 실행"
    assert [run["redelivered"] for run in journal.read(run_id)] == [False, True]


def _policy_of(queue: str) -> str | None:
    return next(q for q in management("GET", f"queues/{quoted(vhost())}") if q["name"] == queue).get("policy")


def test_a_consumer_timeout_policy_does_not_stop_a_long_task_on_a_classic_queue():
    # RabbitMQ 4.3은 consumer_timeout 을 쿼럼 큐에서만 지킨다. 클래식 큐에 1초 정책을 걸어도 3초 작업은 한 번에 끝난다.
    purge(LESSON)
    policy = f"policies/{quoted(vhost())}/practice08-consumer-timeout"
    definition = {"consumer-timeout": 1000}
    management("PUT", policy, {"pattern": "^practice08$", "definition": definition, "apply-to": "queues"})
    try:
        with running(*lesson_workers(LESSON)) as (worker,):
            wait_until(lambda: _policy_of(LESSON) == "practice08-consumer-timeout", "큐에 걸린 정책", WAIT_SECONDS)
            run_id = str(uuid.uuid4())
            result = late_ack_requeued.delay(run_id, crash=False, seconds=LONG_SECONDS)
            assert result.get(timeout=WAIT_SECONDS) == "끝남: 1번째 실행"
            # 다시 배달되지 않았다
            never_within(REDELIVERY_WINDOW_SECONDS, lambda: len(journal.read(run_id)) > 1, "다시 배달된 작업")
            assert "Couldn't ack" not in worker.log
    finally:
        management("DELETE", policy)


BY_HAND_WORKER = "celery -A practice08.tasks worker --loglevel=info --concurrency=1"  # README의 직접 해 보기 1


class ByHandWorker(ReadmeWorker):
    """README의 명령을 `celery` 스크립트로 띄운다. 프로세스 이름(comm)이 `celery` 라서 `ps -C celery` 에 나온다.

    `ReadmeWorker` 는 `python -m celery` 로 띄우므로 이름이 `python` 이다.
    """

    def __init__(self) -> None:
        super().__init__(LESSON, BY_HAND_WORKER)

    @property
    def argv(self) -> list[str]:
        assert super().argv[:3] == [sys.executable, "-m", "celery"]
        return [str(Path(sys.executable).with_name("celery")), *super().argv[3:]]


def _celery_processes() -> dict[int, int]:
    """README의 `ps -o pid,ppid,args -C celery` 를 돌려 {pid: ppid}."""
    out = subprocess.run(["ps", "-o", "pid,ppid,args", "-C", "celery"], capture_output=True, text=True, check=True)
    rows = [line.split(None, 2) for line in out.stdout.splitlines()[1:]]
    return {int(pid): int(ppid) for pid, ppid, _ in rows}


def _pool_process(worker: Worker) -> int:
    """ps의 줄 가운데 PPID가 워커 메인 프로세스인 것: 풀 프로세스."""
    (child,) = [pid for pid, ppid in _celery_processes().items() if ppid == worker.proc.pid]
    return child


def test_the_by_hand_steps_kill_the_pool_process_then_the_whole_worker_then_quit():
    purge(LESSON)
    assert BY_HAND_WORKER in readme("practice08/README.md") and BY_HAND_WORKER in readme("practice08/README.en.md")
    run_id = str(uuid.uuid4())
    by_hand = ByHandWorker()
    with running(by_hand):
        # 1. README의 celery call 명령 그대로 (run_id 만 새로)
        call = subprocess.run(
            [str(Path(sys.executable).with_name("celery")), "-A", "practice08.tasks", "call",
             "practice08.tasks.late_ack_requeued", f'--args=["{run_id}", false, 30]'],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=WAIT_SECONDS, check=True,
        )  # fmt: skip
        task_id = call.stdout.strip()
        (first,) = journal.wait_for(run_id, 1, timeout=WAIT_SECONDS)
        # 2. ps로 찾은 풀 프로세스가 작업을 돌리고 있다. kill -9 → 같은 작업이 다시 received.
        child = _pool_process(by_hand)
        assert child == first.pid
        os.kill(child, signal.SIGKILL)
        by_hand.wait_for_log(r"exited with 'signal 9 \(SIGKILL\)'", WAIT_SECONDS)
        by_hand.wait_for_log(
            rf"(?s)(Task practice08\.tasks\.late_ack_requeued\[{task_id}\] received.*){{2}}", WAIT_SECONDS
        )
        assert [run["redelivered"] for run in journal.wait_for(run_id, 2, timeout=WAIT_SECONDS)] == [False, True]
        # 3. 메인 프로세스와 풀 프로세스를 함께 kill -9
        main, child = by_hand.proc.pid, _pool_process(by_hand)
        os.kill(main, signal.SIGKILL)
        os.kill(child, signal.SIGKILL)
        by_hand.proc.wait(WAIT_SECONDS)
    again = ByHandWorker()
    with running(again):
        assert journal.wait_for(run_id, 3, timeout=WAIT_SECONDS)[-1]["redelivered"] is True
        again.proc.send_signal(signal.SIGQUIT)  # cold shutdown: kill -QUIT <메인 pid>
        again.proc.wait(WAIT_SECONDS)
    with running(ByHandWorker()) as (last,):
        assert journal.wait_for(run_id, 4, timeout=WAIT_SECONDS)[-1]["redelivered"] is True
        last.kill()
    purge(LESSON)  # 30초 작업은 끝까지 기다리지 않는다


MEMORY_LIMIT_KIB = 200 * 1024
GROW_MEGABYTES = 300


def test_max_memory_per_child_is_checked_only_after_the_task_ends():
    with worker_on_empty_queue(LESSON, concurrency=1, extra_args=[f"--max-memory-per-child={MEMORY_LIMIT_KIB}"]):
        big = str(uuid.uuid4())
        result = grow.delay(big, GROW_MEGABYTES, seconds=LONG_SECONDS)
        (run,) = journal.wait_for(big, 1, timeout=WAIT_SECONDS)
        time.sleep(LONG_SECONDS / 2)
        rss_kib = int(Path(f"/proc/{run.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        assert rss_kib > MEMORY_LIMIT_KIB  # 한도를 넘었지만 실행 중인 작업은 그대로
        assert result.get(timeout=WAIT_SECONDS) == GROW_MEGABYTES
        small = str(uuid.uuid4())
        grow.delay(small, 1, seconds=0).get(timeout=WAIT_SECONDS)
        assert journal.read(small)[0].pid != run.pid  # 끝난 뒤에야 새 풀 프로세스로 바뀌었다
