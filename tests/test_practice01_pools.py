"""practice01 README 절의 경고: solo 와 threads 풀은 시간 제한을 조용히 무시한다.

practice01 의 prefork 워커가 같은 큐를 소비하지 않도록 test_practice01.py 와 다른 모듈에 둔다.
"""

from __future__ import annotations

import uuid

import pytest

from playground.lessons import run_call_tasks, worker_on_empty_queue
from practice01.tasks import ITEMS, batch_with_cleanup, hard_limited, notebook, notes_key

WAIT = 15


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_solo_and_threads_pools_ignore_time_limits_silently(pool):
    with worker_on_empty_queue("practice01", pool=pool, concurrency=1) as worker:
        hard_id = str(uuid.uuid4())
        hard = hard_limited.delay(hard_id)
        soft = batch_with_cleanup.delay(str(uuid.uuid4()))
        assert hard.get(timeout=WAIT) is None
        assert hard.state == "SUCCESS"
        assert notebook.lrange(notes_key(hard_id), 0, -1)[1:] == ["끝까지 실행", "finally 시작", "finally 끝"]
        assert soft.get(timeout=WAIT) == {"processed": ITEMS, "of": ITEMS, "cleaned_up": False}
        assert "time limit" not in worker.log.lower()


def test_call_tasks_against_a_solo_worker_reports_the_ignored_limit():
    with worker_on_empty_queue("practice01", pool="solo", concurrency=1):
        run = run_call_tasks("practice01", timeout=90)
    assert run.returncode == 1
    assert "hard_limited.delay(run_id) → state=SUCCESS" in run.output
    assert "!! 예상과 다름: 하드 제한의 state = 'SUCCESS' (예상: 'FAILURE')" in run.output
