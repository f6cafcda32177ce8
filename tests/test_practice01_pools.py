"""practice01 README 절의 경고: solo와 threads 풀은 시간 제한을 조용히 무시하고, gevent는 하드 제한만 지킨다.

practice01의 prefork 워커가 같은 큐를 소비하지 않도록 test_practice01.py 와 다른 모듈에 둔다. README의 solo 명령을
그대로 띄워 call_tasks 를 돌리는 테스트는 tests/test_practice00_02_readme_workers.py 에 있다.
"""

from __future__ import annotations

import pytest
from celery.exceptions import TimeLimitExceeded

from playground.lessons import worker_on_empty_queue
from practice01.tasks import HARD_LIMIT_SECONDS, ITEMS, batch_with_cleanup, hard_limited, journal, send
from tests import WAIT_SECONDS

LESSON = "practice01"


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_solo_and_threads_pools_ignore_time_limits_silently(pool):
    with worker_on_empty_queue(LESSON, pool=pool, concurrency=1) as worker:
        hard, hard_id = send(hard_limited)
        soft, _ = send(batch_with_cleanup)
        assert hard.get(timeout=WAIT_SECONDS) is None
        assert hard.state == "SUCCESS"
        assert journal.whats(hard_id)[1:] == ["끝까지 실행", "finally 시작", "finally 끝"]
        assert soft.get(timeout=WAIT_SECONDS) == {"processed": ITEMS, "of": ITEMS, "cleaned_up": False}
        assert "time limit" not in worker.log.lower()


def test_gevent_enforces_the_hard_limit_inside_the_task_and_ignores_the_soft_one():
    with worker_on_empty_queue(LESSON, pool="gevent", concurrency=2) as worker:
        hard, hard_id = send(hard_limited)
        soft, _ = send(batch_with_cleanup)
        with pytest.raises(TimeLimitExceeded):
            hard.get(timeout=WAIT_SECONDS)
        with pytest.raises(TimeLimitExceeded):
            soft.get(timeout=WAIT_SECONDS)
        log = worker.log
    assert hard.state == soft.state == "FAILURE"
    # gevent.Timeout 은 작업 안에서 일어나는 예외라 finally가 끝까지 돈다(prefork는 프로세스를 죽인다).
    assert journal.whats(hard_id)[1:] == ["finally 시작", "finally 끝"]
    assert "Soft time limit" not in log
    assert f"Hard time limit ({HARD_LIMIT_SECONDS}s) exceeded for practice01.tasks.batch_with_cleanup[{soft.id}]" in log
