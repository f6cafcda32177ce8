"""practice00 README 절 가운데 브로커의 큐를 직접 보아야 하는 주장들.

test_practice00.py 의 모듈 워커가 같은 큐를 소비하면 큐는 늘 비어 보인다. 그래서 이 모듈의 테스트는 워커 없이, 또는
테스트마다 자기 워커를 띄웠다가 멈춘 뒤에 큐를 본다.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy

from course import wait_until
from playground import PROJECT_ROOT
from playground.broker import queue_counts
from playground.lessons import worker_on_empty_queue
from practice00.tasks import COUNTDOWN_SECONDS, add
from tests import WAIT_SECONDS

LESSON = "practice00"
FOREVER_STAND_IN_SECONDS = 3  # '영원히'를 대신해 이만큼 기다린다: 그동안 돌아오면 실패


def test_delay_with_an_execution_option_raises_before_any_message_is_sent(empty_queue):
    with pytest.raises(TypeError, match="unexpected keyword argument 'countdown'"):
        add.delay(2, 3, countdown=COUNTDOWN_SECONDS)
    assert queue_counts(empty_queue) == (0, 0)  # 큐에 아무것도 가지 않았다
    add.delay(2, 3)  # 옵션이 없으면 메시지가 간다: 위의 (0, 0) 이 세는 방법의 탓이 아니다
    wait_until(lambda: queue_counts(empty_queue) == (1, 0), "보낸 메시지 하나가 큐에", WAIT_SECONDS)


def test_a_task_waiting_in_the_queue_is_pending(empty_queue):
    waiting = add.delay(1, 2)
    # 아무도 가져가지 않은 채 큐에 있다(보낸 메시지가 큐에 닿기까지 잠깐 걸린다: 다른 연결로 센다)
    wait_until(lambda: queue_counts(empty_queue) == (1, 0), "보낸 메시지 하나가 큐에", WAIT_SECONDS)
    assert (waiting.state, waiting.ready()) == ("PENDING", False)


def test_get_without_a_timeout_keeps_waiting_when_no_worker_runs(empty_queue):
    code = "from practice00.tasks import add\nadd.delay(1, 2).get()\nprint('returned')\n"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        # 보낸 작업은 큐에서 워커를 기다린다. 보낸 뒤부터 '영원히'를 잰다(부하가 크면 프로세스가 뜨는 데만 몇 초 든다).
        wait_until(lambda: queue_counts(empty_queue) == (1, 0), "보낸 작업 하나가 큐에", WAIT_SECONDS)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=FOREVER_STAND_IN_SECONDS)
    finally:
        proc.kill()
        out, _ = proc.communicate()
    assert "returned" not in out
    assert queue_counts(empty_queue) == (1, 0)


def test_a_refused_pickle_message_is_dropped_not_put_back(results_db):
    with worker_on_empty_queue(LESSON) as worker:
        result = add.apply_async((1, 2), serializer="pickle")
        worker.wait_for_log(r"Refusing to deserialize untrusted content of type pickle", WAIT_SECONDS)
        worker.wait_for_log(r"The message has been ignored and discarded\.", WAIT_SECONDS)
    # 워커가 멈추면 ack 하지 않은 메시지는 큐로 돌아간다. 큐가 비어 있으니 워커는 메시지를 버렸다
    # (basic.reject, requeue=False).
    assert queue_counts(LESSON) == (0, 0)
    assert f"{result.id}] received" not in worker.log  # 실행하지 않았다
    rows = results_db.execute(
        sqlalchemy.text("SELECT status FROM celery_taskmeta WHERE task_id = :id"), {"id": result.id}
    ).all()
    assert rows == []  # 결과도 남기지 않았다
