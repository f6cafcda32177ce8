"""practice10 README: revoke(그리고 그 한계), terminate, rate_limit 은 워커마다, 풀과 --autoscale."""

from __future__ import annotations

import pytest

from playground.lessons import run_call_tasks, worker_on_empty_queue
from tests import CALL_TIMEOUT_SECONDS
from tests.readme import assert_samples_match

WAIT = 20


@pytest.fixture(scope="module")
def worker():
    with worker_on_empty_queue("practice10") as worker:
        yield worker


def test_call_tasks_runs_the_whole_scenario(worker):
    run = run_call_tasks("practice10", timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match("practice10", run.output)  # README의 출력 예시가 곧 이 출력이다
    assert "!!" not in run.output
    assert "Tasks flagged as revoked: " in worker.log
    assert "Discarding revoked task: practice10.tasks.work[" in worker.log
    assert "Terminating " in worker.log and " (15)" in worker.log  # SIGTERM
