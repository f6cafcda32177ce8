"""practice14 README: 워커와 브로커 사이의 네트워크가 끊기면(네트워크 네임스페이스와 veth로 만든 분할) heartbeat로
알아채고, 이어지면 다시 연결해 다시 소비한다. RabbitMQ 브로커와 Redis 브로커 모두.

네임스페이스를 만들 수 없는 환경(root가 아니거나 `ip netns add` 가 실패한다)에서는 까닭을 밝히고 건너뛴다. 멈춘
워커(SIGSTOP)의 테스트는 tests/test_practice14.py 에 있고, 그것은 어디서나 실행된다.
"""

from __future__ import annotations

import inspect
import urllib.parse

import pytest
from kombu import Connection
from kombu.transport import redis as kombu_redis

import global_config
from course import never_within, wait_until
from playground.lessons import purge
from playground.workers import running
from practice14 import redis_tasks
from practice14.tasks import HEARTBEAT_SECONDS, journal, work
from tests import WAIT_SECONDS
from tests.partition import NamespacedWorker, Relay, Unavailable, namespace

LESSON = "practice14"
# 이 모듈의 워커도 practice14 큐를 소비한다. tests/test_practice14.py 와 같은 테스트 프로세스에서 차례로 실행한다.
pytestmark = [pytest.mark.xdist_group(LESSON), pytest.mark.early]
DETECTION_BOUND_SECONDS = WAIT_SECONDS + 3 * HEARTBEAT_SECONDS
PARTITION_SECONDS = 6  # Redis 브로커와의 네트워크를 끊어 두는 시간(README의 6초)


@pytest.fixture
def netns():
    try:
        with namespace() as made:
            yield made
    except Unavailable as exc:
        pytest.skip(f"cannot make a network partition here: {exc}")


def _through(relay: Relay, url: str) -> str:
    """url에서 호스트와 포트를 릴레이의 것으로 바꾼 주소 (네임스페이스 안의 워커가 쓴다)."""
    parts = urllib.parse.urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@" if parts.username else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{netloc}{relay.server.getsockname()[0]}:{relay.port}"))


def _relays(netns, broker_url):
    broker = Relay(netns.host_address, urllib.parse.urlsplit(broker_url).port)
    results = Relay(netns.host_address, urllib.parse.urlsplit(global_config.REDIS_URL).port)
    return broker, results


SKIPPED_REDUCTION = (
    "Skipping prefetch count reduction after connection restart because per-consumer QoS (apply_global=False) "
    "is in effect and broker-side prefetch updates would not reach the running consumer."
)


def test_a_partitioned_rabbitmq_worker_is_dropped_and_consumes_again_after_it_heals(netns):
    purge(LESSON)
    broker, results = _relays(netns, global_config.RABBITMQ_URL)
    env = {
        "RABBITMQ_URL": _through(broker, global_config.RABBITMQ_URL),
        "REDIS_URL": _through(results, global_config.REDIS_URL),
    }
    worker = NamespacedWorker(LESSON, netns, concurrency=None, env=env)
    try:
        with running(worker):
            before = journal.new_run()
            work.delay(before, 0.1)
            assert journal.wait_for(before, 2)[0].pid in worker.pids()  # 릴레이를 거쳐 소비한다
            netns.partition()
            # RabbitMQ 쪽: heartbeat 간격 한 번 동안은 연결을 닫지 않고, 그 뒤에 닫는다.
            never_within(HEARTBEAT_SECONDS, lambda: broker.closed_by_server, "heartbeat 간격 안에 RabbitMQ가 닫은 연결")
            wait_until(lambda: broker.closed_by_server, "RabbitMQ가 닫은 워커의 연결", DETECTION_BOUND_SECONDS)
            # 워커 쪽: 곧 연결이 끊긴 것을 안다. 까닭은 실행마다 두 가지 가운데 하나였다. 워커의 veth가 내려가
            # 네임스페이스 안의 경로가 사라졌으므로 다음 프레임의 send가 실패하거나(ENETUNREACH), 읽기가 EOF를 본다.
            lost = (
                r"consumer: Connection to broker lost\. Trying to re-establish the connection\.\.\. "
                r"\(OSError\((101, 'Network is unreachable'|'Server unexpectedly closed connection')\)\)"
            )
            worker.wait_for_log(lost, WAIT_SECONDS)
            # 끊겨 있는 동안 처음에는 2초 뒤에, 그다음에는 2초씩 늘려 가며(최대 30초) 다시 연결해 본다.
            for pause in ("2.00", "4.00"):
                worker.wait_for_log(
                    rf"Cannot connect to amqp://\S+: \[Errno 101\] .*\nTrying again in {pause} seconds", WAIT_SECONDS
                )
            defaults = inspect.signature(Connection._ensure_connection).parameters
            assert [defaults[k].default for k in ("interval_start", "interval_step", "interval_max")] == [2, 2, 30]
            netns.heal()
            wait_until(lambda: worker.log.count("Connected to amqp://") >= 2, "다시 연결한 워커", WAIT_SECONDS)
            after = journal.new_run()
            work.delay(after, 0.1)
            assert journal.wait_for(after, 2)[0].pid in worker.pids()  # 다시 소비한다
            assert SKIPPED_REDUCTION in worker.log
    finally:
        broker.close()
        results.close()


def test_a_partitioned_redis_broker_worker_notices_nothing_and_consumes_again_after_it_heals(netns):
    redis_tasks.app.control.purge()
    broker, results = _relays(netns, global_config.REDIS_URL)
    worker = NamespacedWorker(
        LESSON, netns, module="redis_tasks", concurrency=1, env={"REDIS_URL": _through(broker, global_config.REDIS_URL)}
    )
    try:
        with running(worker):
            before = journal.new_run()
            redis_tasks.note.delay(before, "before")
            journal.wait_for(before, 1)
            netns.partition()
            # Redis 브로커에는 AMQP heartbeat가 없다. kombu는 Redis 연결을 25초(health_check_interval)마다 살핀다.
            # 그래서 6초 동안 끊긴 것은 워커도 Redis도 알아채지 못하고, 연결은 열린 채로 있다.
            assert kombu_redis.Channel.health_check_interval == kombu_redis.DEFAULT_HEALTH_CHECK_INTERVAL == 25
            assert "health_check_interval" not in redis_tasks.app.conf.broker_transport_options
            never_within(PARTITION_SECONDS, lambda: "Connection to broker lost" in worker.log, "끊긴 것을 알아챈 워커")
            netns.heal()
            after = journal.new_run()
            redis_tasks.note.delay(after, "after")
            journal.wait_for(after, 1, timeout=WAIT_SECONDS)  # 같은 연결로 다시 소비한다
            assert worker.log.count("Connected to redis://") == 1
            # 브로커가 사라졌다가 돌아오는 것: 릴레이를 닫아 연결을 끊고, 같은 포트에 다시 연다.
            broker.close()
            worker.wait_for_log(r"consumer: Connection to broker lost", WAIT_SECONDS)
            worker.wait_for_log(r"Cannot connect to redis://\S+: Error 111 connecting", WAIT_SECONDS)
            broker = Relay(netns.host_address, broker.target, port=broker.port)
            wait_until(lambda: worker.log.count("Connected to redis://") >= 2, "다시 연결한 워커", WAIT_SECONDS)
            back = journal.new_run()
            redis_tasks.note.delay(back, "back")
            journal.wait_for(back, 1)  # 다시 소비한다
            assert SKIPPED_REDUCTION in worker.log  # Redis 브로커에서도 같은 줄이 찍힌다
    finally:
        broker.close()
        results.close()
