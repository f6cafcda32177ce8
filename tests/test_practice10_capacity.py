"""practice10 README: 워커가 일을 받아 둘 자리와 풀 크기 — rate_limit 을 기다리는 작업이 prefetch 자리를 차지해
같은 큐의 다른 작업을 막는 것, 기본 풀 크기(os.cpu_count())와 Celery 5.7의 --concurrency=auto.
"""

from __future__ import annotations

import os
import re
import sys
import time

import pytest
from celery import Celery
from celery.utils.sysinfo import available_cpu_count, cgroup_cpu_quota, cpu_budget

from course import wait_until
from playground import broker
from playground.lessons import purge
from playground.workers import Worker, running
from practice10.tasks import app, journal, limited, work
from tests import WAIT_SECONDS
from tests.readme import command_starting, lesson_readmes, parse, readme

LESSON = "practice10"
README_KO = readme(lesson_readmes(LESSON)[0])

# rate_limit 에 걸려 기다리는 작업이 prefetch 자리를 채우는 실험. 관리 API의 큐 통계는 몇 초마다(기본 5초) 모이므로
# 자리가 찬 채로 그보다 오래 머물도록 느린 속도로 많이 보낸다.
SLOW_RATE = "1/s"
SLOW_PER_SECOND = 1
BURST = 20
OWN_QUEUE = "practice10-limited"
CONCURRENCY = 2  # Worker의 기본값
PREFETCH = CONCURRENCY * 4  # 풀 크기 × worker_prefetch_multiplier(기본 4)
STARTS_AT_ONCE_SECONDS = 2.0  # 따로 둔 워커에서 곧바로 시작한다는 것의 허용치
MANAGEMENT_STATS_SECONDS = 15


def _slowed(worker: Worker) -> None:
    replies = app.control.rate_limit(
        limited.name, SLOW_RATE, destination=[worker.node], reply=True, timeout=WAIT_SECONDS
    )
    assert replies and "ok" in replies[0][worker.node], replies


def _queue(name: str) -> dict:
    return broker.management("GET", f"queues/{broker.quoted(broker.vhost())}/{broker.quoted(name)}")


@pytest.mark.early
def test_tasks_waiting_for_a_rate_limit_hold_prefetch_slots_and_block_the_queue():
    assert Celery("defaults", set_as_current=False).conf.worker_prefetch_multiplier == 4
    purge(LESSON)
    with running(Worker(LESSON, concurrency=CONCURRENCY)) as (worker,):
        stats = app.control.inspect(destination=[worker.node], timeout=1).stats()[worker.node]
        assert stats["prefetch_count"] == PREFETCH
        _slowed(worker)
        run = journal.new_run()
        for _ in range(BURST):
            limited.delay(run)
        other_run = journal.new_run()
        sent = time.time()
        other = work.delay(other_run)  # rate_limit 이 없는 작업, 같은 큐

        reserved_seen = []

        def unacked_is_the_prefetch():
            assert journal.read(other_run) == []  # work는 아직 시작하지 않았다
            ready, consumers = broker.queue_counts(app.conf.task_default_queue)
            assert ready >= 1 and consumers == 1  # work의 메시지는 아직 브로커에 있다(워커에게 오지 않았다)
            # 워커는 기다리는 작업을 받아 두었지만 ack 하지 않았다: 관리 UI의 Unacked가 prefetch 만큼이다.
            unacked = _queue(app.conf.task_default_queue).get("messages_unacknowledged")
            reserved_seen.append(len(app.control.inspect(destination=[worker.node], timeout=1).reserved()[worker.node]))
            return unacked == PREFETCH

        wait_until(unacked_is_the_prefetch, f"관리 API의 Unacked {PREFETCH}개", MANAGEMENT_STATS_SECONDS)
        # 기다리는 작업들은 inspect reserved에 나오지 않는다(풀로 넘어가는 순간의 하나만 보일 수 있다).
        assert max(reserved_seen) <= 1

        other.get(timeout=WAIT_SECONDS + BURST / SLOW_PER_SECOND)
        delay = journal.read(other_run)[0].at - sent
        # work는 자리 하나가 빌 때까지, 곧 BURST - PREFETCH 개의 limited가 더 시작할 때까지 기다렸다.
        expected = (BURST - PREFETCH) / SLOW_PER_SECOND
        assert delay >= expected * 0.75, (delay, expected)
        print(f"work started {delay:.1f} s after being sent behind {BURST} limited at {SLOW_RATE} ({expected} s)")
        assert len(journal.read(run)) < BURST  # limited는 아직 다 시작하지 않았다
    purge(LESSON)  # 멈춘 워커가 받아 두었던 limited는 큐로 돌아갔다: 다음 테스트를 위해 비운다


def test_on_their_own_queue_rate_limited_tasks_leave_the_other_work_alone():
    purge(LESSON)
    limited_worker = Worker(LESSON, queues=[OWN_QUEUE], concurrency=CONCURRENCY)
    try:
        with running(limited_worker, Worker(LESSON, concurrency=CONCURRENCY)):
            _slowed(limited_worker)
            run = journal.new_run()
            for _ in range(BURST):
                limited.apply_async((run,), queue=OWN_QUEUE)
            other_run = journal.new_run()
            sent = time.time()
            work.delay(other_run).get(timeout=WAIT_SECONDS)
            delay = journal.read(other_run)[0].at - sent
            assert delay < STARTS_AT_ONCE_SECONDS, delay
            assert len(journal.read(run)) < BURST  # limited는 아직 기다리는 중이었다
    finally:
        broker.delete_queue(OWN_QUEUE)


# --- 기본 풀 크기와 --concurrency=auto --------------------------------------------------------------------------


def _pool(worker: Worker) -> dict:
    return app.control.inspect(destination=[worker.node], timeout=1).stats()[worker.node]["pool"]


def _banner_concurrency(worker: Worker) -> int:
    return int(re.search(r"\.> concurrency: (\d+) \(prefork\)", worker.log).group(1))


def _auto_line(budget) -> str:
    """워커가 auto를 풀었을 때 남기는 줄 (celery/worker/worker.py 의 _resolve_auto_concurrency 와 같은 형식)."""
    quota = "no cgroup cpu quota found" if budget.quota is None else f"cgroup cpu quota={budget.quota:.2f}"
    return (
        f"worker_concurrency='auto' resolved to {budget.count} "
        f"(pool=prefork, {quota}, available cpus={budget.available})."
    )


class PinnedWorker(Worker):
    """`taskset -c 0 celery … worker`: CPU 하나에만 묶인 워커 (cgroup이 아니라 CPU affinity로 줄인 CPU)."""

    @property
    def argv(self) -> list[str]:
        return ["taskset", "-c", "0", *super().argv]


class SettingWorker(Worker):
    """명령 줄 대신 앱 설정 worker_concurrency="auto" 로 띄운 워커 (같은 앱, 같은 worker 명령)."""

    @property
    def argv(self) -> list[str]:
        args = super().argv[super().argv.index("worker") :]
        code = f"from practice10.tasks import app; app.conf.worker_concurrency = 'auto'; app.worker_main({args!r})"
        return [sys.executable, "-c", code]


def test_without_concurrency_the_pool_has_one_process_per_cpu_of_the_machine():
    purge(LESSON)
    with running(Worker(LESSON, concurrency=None)) as (default,):
        pool = _pool(default)
    assert pool["max-concurrency"] == len(pool["processes"]) == _banner_concurrency(default) == os.cpu_count()


def test_readme_auto_command_sizes_the_pool_by_what_cpu_budget_returns_here():
    # 이 기계에는 cgroup CPU quota가 없을 수 있다(없으면 quota 부분은 소스로만 확인한 것이다). 어느 쪽이든 워커의
    # 답은 Celery의 cpu_budget() 이 이 기계에서 돌려주는 값과 같다.
    command = command_starting(README_KO, "celery -A practice10.tasks worker --loglevel=info --concurrency=auto")
    argv = parse(command).argv
    extra = [arg for arg in argv[argv.index("worker") + 1 :] if not arg.startswith("--loglevel")]
    assert extra == ["--concurrency=auto"]
    budget = cpu_budget()
    assert budget.available == available_cpu_count() and budget.quota == cgroup_cpu_quota()
    purge(LESSON)
    for worker in (
        Worker(LESSON, concurrency=None, extra_args=extra),
        SettingWorker(LESSON, concurrency=None),
    ):
        with running(worker):
            pool = _pool(worker)
        assert pool["max-concurrency"] == len(pool["processes"]) == _banner_concurrency(worker) == budget.count
        assert _auto_line(budget) in worker.log


@pytest.mark.skipif("os.cpu_count() < 2", reason="needs two CPUs to pin a worker to fewer than the machine has")
def test_a_worker_pinned_to_one_cpu_still_starts_cpu_count_processes_unless_auto():
    purge(LESSON)
    with running(PinnedWorker(LESSON, concurrency=None)) as (pinned,):
        by_default = _pool(pinned)
    with running(PinnedWorker(LESSON, concurrency=None, extra_args=["--concurrency=auto"])) as (auto,):
        with_auto = _pool(auto)
    assert len(by_default["processes"]) == os.cpu_count()  # 묶인 CPU는 하나인데 기계의 CPU 수만큼
    assert len(with_auto["processes"]) == 1
    assert "resolved to 1 (pool=prefork, " in auto.log and "available cpus=1)." in auto.log
