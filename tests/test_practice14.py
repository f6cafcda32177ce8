"""practice14 README: 멈춘 워커와 heartbeat, 깨어난 워커의 Couldn't ack, 연결이 끊기면 취소하는 워커.

테스트마다 워커 둘을 스스로 띄우고, 작업을 받은 쪽을 프로세스 그룹째 SIGSTOP으로 멈췄다가 SIGCONT로 깨운다.
"""

from __future__ import annotations

import inspect
import os
import re
import signal

import pytest
from celery import Celery
from celery.exceptions import Retry
from celery.result import AsyncResult
from celery.worker import loops
from celery.worker.request import Request
from kombu import Connection

import global_config
from course import never_within, wait_until
from playground.broker import management, vhost
from playground.lessons import purge
from playground.workers import running
from practice14.call_tasks import counts, freeze_the_busy_one, two_workers
from practice14.tasks import HEARTBEAT_SECONDS, WORK_SECONDS, app, journal, work
from tests import WAIT_SECONDS

LESSON = "practice14"
# 이 모듈의 테스트는 같은 큐(practice14)를 소비하는 워커를 띄운다. 섞이지 않게 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)
# 멈춘 워커를 알아채는 데 걸리는 시간의 상한: heartbeat 간격의 몇 배에 부하를 더한다(재는 것은 벤치마크가 한다).
DETECTION_BOUND_SECONDS = WAIT_SECONDS + 3 * HEARTBEAT_SECONDS


def test_celery_defaults_the_readme_quotes():
    conf = Celery("defaults", set_as_current=False).conf
    assert conf.broker_heartbeat == 120
    assert conf.broker_heartbeat_checkrate == 3.0
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False
    # 워커는 heartbeat / checkrate 초마다 연결을 살핀다.
    assert "timer.call_repeatedly(heartbeat / rate, tick, (rate,))" in inspect.getsource(loops._enable_amqheartbeats)


@pytest.mark.parametrize(("proposed", "negotiated"), [(120, 60), (2, 2), (0, 0)])
def test_the_heartbeat_is_the_smaller_of_the_two_proposals(proposed, negotiated):
    with Connection(global_config.RABBITMQ_URL, heartbeat=proposed) as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.connection.server_heartbeat == 60  # RabbitMQ 4.3의 기본값
        assert conn.connection.heartbeat == negotiated


def _vhost_connections():
    return [c for c in management("GET", "connections") if c.get("vhost") == vhost()]


def test_only_the_workers_connection_carries_the_heartbeat():
    purge(LESSON)
    (worker, _) = two_workers()
    with app.connection_for_write() as caller, running(worker):
        caller.ensure_connection(max_retries=1)
        caller_port = caller.connection.sock.getsockname()[1]

        def timeouts():
            found = {c["peer_port"]: c["timeout"] for c in _vhost_connections()}
            return found if caller_port in found and len(found) >= 2 else None

        found = wait_until(timeouts, "관리 API의 연결 목록에 보내는 쪽과 워커의 연결", WAIT_SECONDS)
        assert found.pop(caller_port) == 0
        assert HEARTBEAT_SECONDS in found.values()


def _wait_log(worker, pattern):
    return wait_until(lambda: re.search(pattern, worker.log), f"워커 로그의 {pattern!r}", WAIT_SECONDS).group(0)


def test_a_frozen_worker_is_noticed_only_by_heartbeats_and_its_task_runs_twice():
    purge(LESSON)
    with running(*two_workers()) as workers:
        run, frozen, _ = freeze_the_busy_one(workers)
        (other,) = [worker for worker in workers if worker is not frozen]
        try:
            # heartbeat 간격 동안 RabbitMQ는 아무것도 하지 않는다. 그 뒤 연결을 닫고 다른 워커에 재전달한다.
            never_within(HEARTBEAT_SECONDS, lambda: counts(run)[0] > 1, "heartbeat 간격 안의 재전달")
            second = journal.wait_for(run, 2, what="시작", timeout=DETECTION_BOUND_SECONDS)[-1]
            assert second.pid in other.pids()
            assert "Connection to broker lost" not in frozen.log
        finally:
            os.killpg(frozen.proc.pid, signal.SIGCONT)
        journal.wait_for(run, 2, what="끝", timeout=WAIT_SECONDS + WORK_SECONDS)
        assert counts(run) == (2, 2)
        ack = _wait_log(frozen, r"CRITICAL/MainProcess\] Couldn't ack .*")
        assert ack.endswith(
            "Couldn't ack 1, reason:RecoverableConnectionError(None, 'connection already closed', None, '')"
        )
        log = frozen.log
        assert "consumer: Connection to broker lost. Trying to re-establish the connection..." in log
        assert "CPendingDeprecationWarning" in log
        assert "The setting will be set to True by default in Celery 6.0." in log
        assert (
            "Skipping prefetch count reduction after connection restart because per-consumer QoS (apply_global=False) "
            "is in effect and broker-side prefetch updates would not reach the running consumer." in log
        )
        assert log.count("Connected to amqp://") >= 2  # 다시 연결했다
        # 다시 연결한 워커는 새 작업을 받는다: 다른 워커가 큐 소비를 멈춘 뒤 보낸 작업을 멈췄던 워커가 실행한다.
        assert app.control.cancel_consumer(LESSON, destination=[other.node], reply=True, timeout=WAIT_SECONDS)
        after = journal.new_run()
        work.delay(after, 0.1)
        assert journal.wait_for(after, 1)[0].pid in frozen.pids()


def test_cancel_on_connection_loss_terminates_the_woken_task_and_leaves_one_effect():
    purge(LESSON)
    with running(*two_workers(cancel_on_loss=True)) as workers:
        run, frozen, _ = freeze_the_busy_one(workers)
        (task_id,) = {entry["task_id"] for entry in journal.read(run)}
        try:
            journal.wait_for(run, 2, what="시작", timeout=DETECTION_BOUND_SECONDS)
        finally:
            os.killpg(frozen.proc.pid, signal.SIGCONT)
        cancelled = _wait_log(
            frozen, r"Task \S+ cannot be acknowledged after a connection loss[^\n]*\nTerminating it instead\."
        )
        assert f"practice14.tasks.work[{task_id}]" in cancelled
        # 취소한 워커는 결과 백엔드에 RETRY를 적는다. 재전달받은 워커가 끝나면 SUCCESS가 된다.
        result = AsyncResult(task_id, app=app)
        assert wait_until(lambda: result.state == "RETRY", "RETRY 상태", WAIT_SECONDS)
        assert isinstance(result.info, Retry)
        assert result.get(timeout=WAIT_SECONDS + WORK_SECONDS) in set().union(*(w.pids() for w in workers))
        never_within(WORK_SECONDS, lambda: counts(run)[1] > 1, "취소된 작업의 효과")
        assert counts(run) == (2, 1)
        # 그 작업을 실행하던 풀 프로세스는 끝났고(Request.cancel 은 SIGTERM을 보낸다), 워커는 새 풀 프로세스를 띄웠다.
        first = journal.read(run)[0]
        assert first.pid not in frozen.pids() and len(frozen.pids()) == 2
        assert "signal or TERM_SIGNAME" in inspect.getsource(Request.cancel)
        assert "CPendingDeprecationWarning" not in frozen.log
