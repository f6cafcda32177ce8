"""practice14 README: 멈춘 워커와 heartbeat, 깨어난 워커의 Couldn't ack, 연결이 끊기면 취소하는 워커.

테스트마다 워커 둘을 스스로 띄우고, 작업을 받은 쪽을 프로세스 그룹째 SIGSTOP으로 멈췄다가 SIGCONT로 깨운다.
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import urllib.parse
from pathlib import Path

import pytest
from amqp import Connection as AmqpConnection
from celery import Celery
from celery.exceptions import Retry
from celery.result import AsyncResult
from celery.worker import loops
from celery.worker.consumer.events import Events
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
# tests/test_practice14_partition.py 와 합쳐 1분 가까운 묶음이라 맨 먼저 시작한다(early).
pytestmark = [pytest.mark.xdist_group(LESSON), pytest.mark.early]
# 멈춘 워커를 알아채는 데 걸리는 시간의 상한: heartbeat 간격의 몇 배에 부하를 더한다(재는 것은 벤치마크가 한다).
DETECTION_BOUND_SECONDS = WAIT_SECONDS + 3 * HEARTBEAT_SECONDS


def test_celery_defaults_the_readme_quotes():
    conf = Celery("defaults", set_as_current=False).conf
    assert conf.broker_heartbeat == 120
    assert conf.broker_heartbeat_checkrate == 3.0
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False
    # 워커는 heartbeat / checkrate 초마다 연결을 살핀다.
    assert "timer.call_repeatedly(heartbeat / rate, tick, (rate,))" in inspect.getsource(loops._enable_amqheartbeats)
    # 살필 때 py-amqp는 heartbeat / rate 초 넘게 보낸 것이 없을 때만 프레임을 보내고, 두 간격 넘게 받은 것이 없으면
    # 연결을 끊는다.
    tick = inspect.getsource(AmqpConnection.heartbeat_tick)
    assert "if now > self.last_heartbeat_sent + self.heartbeat / rate:\n" in tick
    assert "two_heartbeats = 2 * self.heartbeat" in tick
    assert "raise ConnectionForced('Too many heartbeats missed')" in tick


def test_native_delayed_delivery_is_set_up_only_by_a_worker_whose_app_has_a_quorum_queue():
    # README의 "쿼럼 큐가 있는 앱의 워커는 다시 연결할 때마다 native delayed delivery를 준비한다"의 조건.
    from types import SimpleNamespace

    from celery.worker.consumer.delayed_delivery import DelayedDelivery

    from practice14 import cluster_tasks

    step = DelayedDelivery(SimpleNamespace())
    assert step.include_if(SimpleNamespace(app=cluster_tasks.app)) is True  # practice14.quorum 이 있다
    assert step.include_if(SimpleNamespace(app=app)) is False  # practice14 큐(클래식 큐)뿐이다


@pytest.mark.parametrize(("proposed", "negotiated"), [(120, 60), (2, 2), (0, 0)])
def test_the_heartbeat_is_the_smaller_of_the_two_proposals(proposed, negotiated):
    with Connection(global_config.RABBITMQ_URL, heartbeat=proposed) as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.connection.server_heartbeat == 60  # RabbitMQ 4.3의 기본값
        assert conn.connection.heartbeat == negotiated


def _vhost_connections():
    return [c for c in management("GET", "connections") if c.get("vhost") == vhost()]


def _consumer_ports():
    """lesson 큐의 컨슈머 두 개가 쓰는 연결의 포트들. 관리 API가 새 컨슈머의 채널 정보를 아직 모으지 못했으면
    (channel_details가 비어 있다) None."""
    consumers = management("GET", f"consumers/{urllib.parse.quote(vhost(), safe='')}")
    details = [c.get("channel_details") or {} for c in consumers if c["queue"]["name"] == LESSON]
    ports = {detail.get("peer_port") for detail in details if isinstance(detail, dict)}
    return ports if len(details) == 2 and len(ports) == 2 and None not in ports else None


def _assert_only_the_workers_two_connections_carry_the_heartbeat(workers):
    """워커마다 두 연결(컨슈머 연결과 이벤트 연결)에만 heartbeat가 걸리고, 보내는 쪽(delay())에는 없다."""
    run = journal.new_run()
    work.delay(run, 0.1)  # delay() 가 쓰는 연결(앱의 producer pool)을 연다
    journal.wait_for(run, 2)
    with app.producer_or_acquire() as producer:  # delay() 가 방금 쓴 그 연결
        caller_port = producer.connection.connection.sock.getsockname()[1]
    own_ports = _local_ports(os.getpid())

    def timeouts():
        found = {c["peer_port"]: c["timeout"] for c in _vhost_connections()}
        return found if caller_port in found and list(found.values()).count(HEARTBEAT_SECONDS) >= 4 else None

    found = wait_until(timeouts, "관리 API의 연결 목록에 보내는 쪽과 워커 둘의 연결", WAIT_SECONDS)
    assert found[caller_port] == 0
    # 이 테스트 프로세스(보내는 쪽)의 연결에는 heartbeat가 없다.
    assert {found[port] for port in found if port in own_ports} == {0}
    consumer_ports = wait_until(_consumer_ports, f"관리 API의 컨슈머 목록에 워커 둘의 {LESSON} 컨슈머", WAIT_SECONDS)
    for worker in workers:
        ports = _local_ports(worker.proc.pid)
        # 워커에서는 두 연결에 heartbeat가 걸린다: 메시지를 받는 컨슈머 연결과 이벤트를 보내는 연결(Events 단계).
        beating = {port for port in found if port in ports and found[port] == HEARTBEAT_SECONDS}
        assert len(beating) == 2
        assert {found[port] for port in found if port in ports and port not in beating} <= {0}
        assert len(beating & consumer_ports) == 1
    assert "conn = c.connection_for_write(heartbeat=c.amqheartbeat)" in inspect.getsource(Events.start)


def _local_ports(pid: int) -> set[int]:
    """프로세스 pid가 연 TCP 소켓들의 로컬 포트 (/proc/<pid>/fd 와 /proc/<pid>/net/tcp 에서 읽는다)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    rows = [line.split() for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]]
    return {int(row[1].split(":")[1], 16) for row in rows if row[9] in inodes}


# RabbitMQ 4.3.6(.ci/services 가 띄운 5673 노드)의 로그 파일. 연결을 닫은 까닭이 여기에 찍힌다.
RABBITMQ_LOG = (
    Path(os.environ.get("CELERY_SERVICES_ROOT", "/var/lib/celery-playground/services-root"))
    / "srv/celery-playground/log/rabbit@localhost.log"
)


def _rabbitmq_log_since(offset: int) -> str:
    with RABBITMQ_LOG.open() as log:
        log.seek(offset)
        return log.read()


def _wait_log(worker, pattern):
    return wait_until(lambda: re.search(pattern, worker.log), f"워커 로그의 {pattern!r}", WAIT_SECONDS).group(0)


def test_only_the_workers_connections_carry_the_heartbeat_and_a_frozen_worker_is_dropped_for_missing_them():
    purge(LESSON)
    log_start = RABBITMQ_LOG.stat().st_size
    with running(*two_workers()) as workers:
        # 워커 둘을 띄운 김에: 어느 연결에 heartbeat가 걸리는지부터 본다.
        _assert_only_the_workers_two_connections_carry_the_heartbeat(workers)
        run, frozen, _ = freeze_the_busy_one(workers)
        (other,) = [worker for worker in workers if worker is not frozen]
        try:
            ports = _local_ports(frozen.proc.pid)

            def beating_connections():
                found = {c["peer_port"] for c in _vhost_connections() if c["peer_port"] in ports and c["timeout"]}
                return found if len(found) == 2 else None  # 컨슈머 연결과 이벤트 연결

            beating = wait_until(beating_connections, "관리 API의 멈춘 워커 연결 두 개", WAIT_SECONDS)
            # heartbeat 간격 동안 RabbitMQ는 아무것도 하지 않는다. 연결은 열린 채로 있다.
            never_within(HEARTBEAT_SECONDS, lambda: counts(run)[0] > 1, "heartbeat 간격 안의 재전달")
            assert beating <= {c["peer_port"] for c in _vhost_connections()}
            # 그 뒤 RabbitMQ는 heartbeat가 끊겼다며 연결을 닫고, 다른 워커에 재전달한다.
            second = journal.wait_for(run, 2, what="시작", timeout=DETECTION_BOUND_SECONDS)[-1]
            assert second.pid in other.pids()
            for port in beating:
                closed = (
                    rf"closing AMQP connection <[\d.]+> \(127\.0\.0\.1:{port} -> [^\n]*\n"
                    rf"[^\n]* missed heartbeats from client, timeout: {HEARTBEAT_SECONDS}s"
                )
                logged = lambda closed=closed: re.search(closed, _rabbitmq_log_since(log_start))  # noqa: E731
                wait_until(logged, f"RabbitMQ 로그의 {port} 연결 missed heartbeats", WAIT_SECONDS)
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
        (other,) = [worker for worker in workers if worker is not frozen]
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
        # 효과(끝)와 결과는 메시지를 재전달받은 워커의 것이다.
        assert result.get(timeout=WAIT_SECONDS + WORK_SECONDS) in other.pids()
        never_within(WORK_SECONDS, lambda: counts(run)[1] > 1, "취소된 작업의 효과")
        assert counts(run) == (2, 1)
        (done,) = [entry for entry in journal.read(run) if entry.what == "끝"]
        assert done.pid in other.pids()
        # 그 작업을 실행하던 풀 프로세스는 끝났고(Request.cancel 은 SIGTERM을 보낸다), 워커는 새 풀 프로세스를 띄웠다.
        first = journal.read(run)[0]
        assert first.pid not in frozen.pids() and len(frozen.pids()) == 2
        assert "signal or TERM_SIGNAME" in inspect.getsource(Request.cancel)
        assert "CPendingDeprecationWarning" not in frozen.log
