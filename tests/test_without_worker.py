"""워커 없이 call_tasks 를 돌리면: 멈추지 않고, 띄울 워커 명령을 알려 주고, 0이 아닌 코드로 끝난다."""

from __future__ import annotations

import re

import pytest
from celery.result import AsyncResult

from playground.lessons import available_lessons, purge, run_call_tasks, worker_on_empty_queue

BOUND_SECONDS = 20


@pytest.mark.parametrize("lesson", available_lessons())
def test_call_tasks_without_a_worker_exits_nonzero_and_says_what_to_start(lesson):
    purge(lesson)
    try:
        run = run_call_tasks(lesson, timeout=BOUND_SECONDS)
    finally:
        purge(lesson)  # 보내 놓은 메시지가 다음 테스트의 워커에게 가지 않게
    assert "did not finish within" not in run.output, run.output
    assert run.returncode != 0
    assert f"celery -A {lesson}.tasks worker --loglevel=info" in run.output
    assert "Traceback" not in run.output


def test_a_task_sent_while_no_worker_runs_is_run_by_a_worker_started_later():
    from practice00.tasks import app

    purge("practice00")
    run = run_call_tasks("practice00", timeout=BOUND_SECONDS)
    assert run.returncode != 0
    task_id = re.search(r"add\.delay\(2, 3\)\s+→ AsyncResult id=(\S+)", run.output).group(1)
    assert AsyncResult(task_id, app=app).state == "PENDING"
    with worker_on_empty_queue("practice00", purge_first=False):
        assert AsyncResult(task_id, app=app).get(timeout=BOUND_SECONDS) == 5
