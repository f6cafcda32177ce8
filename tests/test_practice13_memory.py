"""practice13 README: 메모리와 CPU. `--max-memory-per-child` 는 작업이 끝난 뒤 풀 프로세스의 최대 메모리를 보고 그
프로세스를 바꾼다. 작업 도중에 cgroup의 메모리 한도를 넘으면 OOM 킬러가 죽인다(WorkerLostError, signal 9).
`--concurrency=auto` 는 CPU 수(affinity)와 cgroup의 CPU 할당량 가운데 작은 쪽을 쓴다.

cgroup은 테스트가 /sys/fs/cgroup 의 cgroup v1 계층(memory, cpu) 바로 아래에 만들고 지운다.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from celery.exceptions import WorkerLostError

from course import Journal
from playground import PROJECT_ROOT
from playground.workers import Worker, running
from practice13.tasks import MAX_MEMORY_PER_CHILD_KIB, use_memory
from tests import WAIT_SECONDS

LESSON = "practice13"
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMORY_LIMIT_MB = 250  # 테스트가 만든 cgroup의 메모리 한도. 워커(메인 프로세스와 풀 프로세스 하나)가 쓰기에는 넉넉하다
SMALL_MB = 10  # 한도 아래에서 끝나는 작업
BIG_MB = 200  # --max-memory-per-child(150,000KiB)를 넘기는 작업. 메모리 cgroup에서는 한도를 넘긴다


@contextmanager
def cgroup(controller: str, **settings: str):
    """cgroup v1의 controller 계층에 새 cgroup을 만들고 settings(파일 이름 → 값)를 쓴다. 나올 때 지운다."""
    root = CGROUP_ROOT / controller
    if not (root / "cgroup.procs").exists():
        pytest.skip(f"no writable cgroup v1 {controller} hierarchy at {root}")
    path = root / f"practice13-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        for name, value in settings.items():
            (path / name).write_text(value)
        yield path
    finally:
        for pid in (path / "cgroup.procs").read_text().split():
            with open(root / "cgroup.procs", "w") as procs:  # 남은 프로세스는 맨 위로 옮긴 뒤 지운다
                procs.write(pid)
        path.rmdir()


def test_max_memory_per_child_replaces_the_pool_process_after_a_task_that_grew_it_even_when_it_freed_it():
    # README "직접 해 보기: 메모리 한도"의 명령들. 작업은 `celery call` 로 보내고, pid는 워커 로그에서 읽는다.
    worker = Worker(LESSON, concurrency=1, extra_args=[f"--max-memory-per-child={MAX_MEMORY_PER_CHILD_KIB}"])
    ids = []
    with running(worker):
        for mb in (SMALL_MB, BIG_MB, SMALL_MB):
            call = subprocess.run(
                [sys.executable, "-m", "celery", "-A", "practice13.tasks", "call", "practice13.tasks.use_memory",
                 f'--args=["by-hand", {mb}]'],
                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=WAIT_SECONDS,
            )  # fmt: skip
            assert re.fullmatch(r"[0-9a-f-]{36}\n", call.stdout), call.stdout + call.stderr  # 작업 id만 찍는다
            ids.append(call.stdout.strip())
            worker.wait_for_log(rf"use_memory\[{ids[-1]}\] succeeded in [\d.]+s: \d+", WAIT_SECONDS)
    pids = [int(re.search(rf"use_memory\[{id_}\] succeeded in [\d.]+s: (\d+)", worker.log)[1]) for id_ in ids]
    # 작은 작업과 큰 작업은 같은 프로세스에서 끝까지 실행되었다. 그다음 작업은 새 프로세스다.
    # 큰 작업은 메모리를 놓고 끝났지만, 견주는 값은 그 프로세스의 최대 메모리(ru_maxrss)다.
    assert pids[0] == pids[1] != pids[2]


def test_without_max_memory_per_child_the_same_pool_process_keeps_running():
    run = Journal.new_run()
    with running(Worker(LESSON, concurrency=1)):
        pids = [use_memory.delay(run, mb).get(timeout=WAIT_SECONDS) for mb in (SMALL_MB, BIG_MB, SMALL_MB)]
    assert len(set(pids)) == 1


def test_a_task_growing_past_a_cgroup_memory_limit_is_oom_killed_in_the_middle():
    limit = str(MEMORY_LIMIT_MB * 1024 * 1024)
    run = Journal.new_run()
    worker = Worker(LESSON, concurrency=1, extra_args=[f"--max-memory-per-child={MAX_MEMORY_PER_CHILD_KIB}"])
    with cgroup("memory", **{"memory.limit_in_bytes": limit}) as group, running(worker):
        for pid in sorted(worker.pids()):  # 메인 프로세스와 풀 프로세스를 모두 옮긴다(docker의 mem_limit 처럼)
            (group / "cgroup.procs").write_text(str(pid))
        assert use_memory.delay(run, SMALL_MB).get(timeout=WAIT_SECONDS) in worker.pids()
        result = use_memory.delay(run, BIG_MB * 2).get(timeout=WAIT_SECONDS, propagate=False)
        assert isinstance(result, WorkerLostError)
        assert re.fullmatch(r"Worker exited prematurely: signal 9 \(SIGKILL\) Job: \d+\.", str(result))
        # 메인 프로세스는 살아 있고 새 풀 프로세스를 띄웠다. 다음 작업은 그대로 실행된다.
        assert use_memory.delay(run, SMALL_MB).get(timeout=WAIT_SECONDS) in worker.pids()
        assert int((group / "memory.failcnt").read_text()) > 0  # cgroup이 한도에 닿았다
    # README: 테스트하는 기계에는 스왑이 없다. 그래서 한도를 넘는 순간 스왑 대신 OOM 킬이 온다.
    assert Path("/proc/swaps").read_text().splitlines()[1:] == []
    assert re.search(r"Process 'ForkPoolWorker-\d+' pid:\d+ exited with 'signal 9 \(SIGKILL\)'", worker.log)


def _auto_concurrency_log(
    preexec=None, cpu_group: Path | None = None, concurrency=("--concurrency=auto",), says="resolved to"
) -> str:
    """`celery worker --concurrency=auto` 를 띄워 'auto' 를 몇으로 정했는지 적은 줄(says가 든 줄)을 읽고 멈춘다."""
    command = [
        sys.executable, "-m", "celery", "-A", "practice13.tasks", "worker", *concurrency, "--loglevel=INFO",
        f"--hostname=auto-{uuid.uuid4().hex[:6]}@%h", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if cpu_group is not None:  # 이 셸을 cgroup에 넣고 그 자리에서 워커로 바뀐다
        command = ["sh", "-c", f'echo $$ > {cpu_group / "cgroup.procs"} && exec "$@"', "sh", *command]
    worker = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=preexec, start_new_session=True,
    )  # fmt: skip
    try:
        for line in worker.stdout:
            if says in line:
                return line
        raise AssertionError(f"the worker exited without logging {says!r}")
    finally:
        worker.kill()
        worker.wait(WAIT_SECONDS)
        worker.stdout.close()


def test_concurrency_auto_is_the_cpus_this_process_may_run_on_here():
    line = _auto_concurrency_log()
    cpus = os.process_cpu_count()
    expected = f"resolved to {cpus} (pool=prefork, no cgroup cpu quota found, available cpus={cpus})"
    assert expected in line


def test_concurrency_auto_follows_the_cpu_affinity():
    line = _auto_concurrency_log(preexec=lambda: os.sched_setaffinity(0, {0}))  # `taskset -c 0` 과 같다
    assert "resolved to 1 (pool=prefork, no cgroup cpu quota found, available cpus=1)" in line


def test_concurrency_auto_is_capped_by_a_cgroup_cpu_quota():
    # 0.5 CPU(cfs_quota_us / cfs_period_us)는 올림해서 1이다. docker의 --cpus=0.5 가 이 할당량을 건다.
    with cgroup("cpu", **{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"}) as group:
        line = _auto_concurrency_log(cpu_group=group)
    cpus = os.process_cpu_count()
    assert f"resolved to 1 (pool=prefork, cgroup cpu quota=0.50, available cpus={cpus})" in line


def test_concurrency_auto_reads_the_cgroup_cpu_quota_only_for_the_prefork_pool():
    # threads 풀은 작업이 CPU를 쓰지 않는다고 보고 할당량을 읽지 않는다. CPU 수(affinity)를 그대로 쓴다.
    with cgroup("cpu", **{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"}) as group:
        line = _auto_concurrency_log(
            cpu_group=group, concurrency=("--concurrency=auto", "--pool=threads"), says="worker_concurrency='auto'"
        )
    cpus = os.process_cpu_count()
    assert cpus > 1
    expected = f"worker_concurrency='auto' only sizes the prefork pool; using available cpus={cpus} for pool=threads."
    assert expected in line


def test_without_a_concurrency_the_worker_takes_the_machines_cpu_count_even_with_fewer_cpus_allowed():
    with cgroup("cpu", **{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"}) as group:
        banner = _auto_concurrency_log(
            preexec=lambda: os.sched_setaffinity(0, {0}), cpu_group=group, concurrency=(), says="concurrency:"
        )
    assert f"concurrency: {os.cpu_count()} (prefork)" in banner and os.cpu_count() > 1
