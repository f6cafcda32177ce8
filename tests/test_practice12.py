"""practice12 README: RabbitMQ 우선순위와 prefetch, 붙잡힌 countdown과 native delayed delivery, Redis 브로커의
거꾸로 된 우선순위와 visibility_timeout. 두 워커(RabbitMQ 앱, Redis 앱)를 모듈 내내 함께 쓴다."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import redis
from amqp.exceptions import PreconditionFailed
from celery import Celery
from celery.worker.consumer.tasks import Tasks
from kombu import Connection, Exchange, Queue
from kombu.transport import pyamqp
from kombu.transport import redis as kombu_redis

from course import wait_until
from global_config import RABBITMQ_URL, REDIS_URL
from playground import broker
from practice12 import redis_tasks, tasks
from practice12.tasks import journal
from tests import WAIT_SECONDS

LESSON = "practice12"
# 이 모듈의 테스트들은 NEEDS의 두 워커(RabbitMQ 앱, Redis 앱)를 함께 쓴다(conftest.py 의 lesson_processes). 두 앱의 큐는
# 모두 비운 뒤에 띄운다. RabbitMQ의 practice12, practice12.quorum 과 Redis의 practice12.redis 다.
pytestmark = pytest.mark.xdist_group(LESSON)


def test_a_quorum_queue_makes_the_worker_drop_global_qos_and_warn_about_direct_exchanges(lesson_processes):
    rabbit, _ = lesson_processes
    assert "Global QoS is disabled. Prefetch count is now static." in rabbit.log
    assert (
        "Exchange practice12 is a direct exchange and native delayed delivery do not support direct exchanges."
        in rabbit.log
    )
    assert "Exchange practice12.topic" not in rabbit.log  # topic exchange에 묶인 쿼럼 큐는 경고하지 않는다


def test_rabbitmq_runs_higher_priorities_first_once_nothing_is_prefetched(lesson_processes):
    run = journal.new_run()
    tasks.hold_acks_late.delay(run, "hold", tasks.HOLD_SECONDS)
    journal.wait_for(run, 1, timeout=WAIT_SECONDS)
    for priority in (0, 3, 9, 1, 7):
        tasks.note.apply_async((run, str(priority)), priority=priority)
    order = [entry.what for entry in journal.wait_for(run, 6, timeout=WAIT_SECONDS)]
    assert order == ["hold", "9", "7", "3", "1", "0"]


def test_redis_runs_lower_numbers_first_and_no_priority_counts_as_zero(lesson_processes):
    run = journal.new_run()
    redis_tasks.hold_acks_late.delay(run, "hold", tasks.HOLD_SECONDS)
    journal.wait_for(run, 1, timeout=WAIT_SECONDS)
    redis_tasks.note.apply_async((run, "0"), priority=0)
    redis_tasks.note.apply_async((run, "none"))
    for priority in (9, 1, 5):
        redis_tasks.note.apply_async((run, str(priority)), priority=priority)
    order = [entry.what for entry in journal.wait_for(run, 6, timeout=WAIT_SECONDS)]
    # 0과 '없음'은 같은 목록: 보낸 차례대로.
    assert order == ["hold", "0", "none", "1", "5", "9"]


def test_the_held_countdown_task_blocks_only_its_own_queues_consumer(lesson_processes):
    # 쿼럼 큐로 보낸 작업은 클래식 큐의 countdown 작업이 자리를 차지한 동안에도 곧바로 돈다: 소비자마다 prefetch.
    run = journal.new_run()
    tasks.note.apply_async((run, "countdown"), countdown=tasks.COUNTDOWN_SECONDS)
    tasks.note.apply_async((run, "quorum"), queue=tasks.QUORUM_QUEUE.name)
    tasks.note.apply_async((run, "classic"))
    order = [entry.what for entry in journal.wait_for(run, 3, timeout=WAIT_SECONDS)]
    assert order == ["quorum", "countdown", "classic"]


def test_redis_defaults_look_for_expired_messages_about_every_100_seconds():
    # README의 "기본값으로는 약 100초마다, visibility_timeout 은 1시간" 이 설치된 kombu의 값이다.
    channel = kombu_redis.Channel
    assert channel.unacked_restore_interval * channel.unacked_restore_throttle == 100
    assert channel.visibility_timeout == 3600
    assert channel.priority_steps == [0, 3, 6, 9]  # 그래서 이 실습은 priority_steps 를 0~9로 넓힌다


def test_the_redis_app_restores_within_its_timeout_and_the_countdown_is_longer():
    options = redis_tasks.app.conf.broker_transport_options
    assert options["visibility_timeout"] == redis_tasks.VISIBILITY_TIMEOUT_SECONDS
    assert tasks.LONG_COUNTDOWN_SECONDS > redis_tasks.VISIBILITY_TIMEOUT_SECONDS > 1


def test_the_broker_holds_a_countdown_sent_to_the_quorum_queue_and_the_worker_holds_the_classic_one(lesson_processes):
    rabbit, _ = lesson_processes
    run = journal.new_run()
    received = {}
    for queue in (tasks.QUORUM_QUEUE.name, tasks.PRIORITY_QUEUE.name):
        sent_at = time.monotonic()
        result = tasks.note.apply_async((run, queue), countdown=tasks.COUNTDOWN_SECONDS, queue=queue)
        rabbit.wait_for_log(rf"practice12\.tasks\.note\[{result.id}\] received", WAIT_SECONDS)
        received[queue] = time.monotonic() - sent_at
        journal.wait_for(run, len(received), timeout=WAIT_SECONDS)
    # native delayed delivery: 브로커가 countdown 만큼 갖고 있다가 넘긴다. 클래식 큐의 것은 곧바로 워커에게 온다.
    assert received[tasks.QUORUM_QUEUE.name] >= tasks.COUNTDOWN_SECONDS - 0.5
    assert received[tasks.PRIORITY_QUEUE.name] < tasks.COUNTDOWN_SECONDS - 0.5
    names = {queue["name"] for queue in broker.queues()}
    assert {"celery_delayed_0", "celery_delayed_27"} <= names  # 워커가 만든 지연 단계들 (28개)


def test_a_message_the_redis_worker_holds_sits_in_the_unacked_hash_until_it_is_acked(lesson_processes):
    _, redis_worker = lesson_processes
    client = redis.Redis.from_url(REDIS_URL)
    run = journal.new_run()
    held = redis_tasks.note.apply_async((run, "held"), countdown=tasks.COUNTDOWN_SECONDS)
    redis_worker.wait_for_log(rf"practice12\.redis_tasks\.note\[{held.id}\] received", WAIT_SECONDS)
    received_at = time.time()
    assert held.id in _unacked_task_ids(client)  # 워커가 countdown을 기다리며 쥐고 있는 동안
    # 언제 받아 갔는지: unacked_index 의 점수가 받아 간 시각이다. visibility_timeout 은 이것으로 잰다.
    (tag,) = [t for t, value in client.hgetall("unacked").items() if json.loads(value)[0]["headers"]["id"] == held.id]
    assert abs(client.zscore("unacked_index", tag) - received_at) < 2
    journal.wait_for(run, 1, timeout=WAIT_SECONDS)
    # 실행한 뒤에 ack: 되돌아간 사본들까지 모두 실행되고 나면 없다.
    wait_until(lambda: held.id not in _unacked_task_ids(client), "작업이 unacked 해시에서 빠짐", WAIT_SECONDS)


def _unacked_task_ids(client):
    """kombu의 unacked 해시에 있는 메시지들의 작업 id. 값은 [메시지, exchange, 라우팅 키] 의 JSON이다."""
    return {json.loads(value)[0]["headers"]["id"] for value in client.hvals("unacked")}


def consumers_of(queue: str) -> list[dict]:
    """관리 API가 보여 주는 그 큐의 소비자들 (prefetch_count, channel_details …)."""
    return [
        c for c in broker.management("GET", f"consumers/{broker.quoted(broker.vhost())}") if c["queue"]["name"] == queue
    ]


def channel_named(name: str) -> dict:
    """관리 API가 보여 주는 그 채널 (채널 통계는 몇 초 늦게 나타나므로 나타날 때까지 기다린다)."""

    def found():
        channels = broker.management("GET", f"vhosts/{broker.quoted(broker.vhost())}/channels")
        return next((c for c in channels if c.get("name") == name), None)

    return wait_until(found, f"관리 API의 채널: {name}", WAIT_SECONDS)


def wait_for_consumers(queue: str, count: int = 1) -> list[dict]:
    """그 큐의 소비자가 count 개 보일 때까지 기다린다 (소비자의 채널 정보도 몇 초 늦게 채워진다)."""

    def found():
        consumers = [c for c in consumers_of(queue) if c.get("channel_details", {}).get("name")]
        return consumers if len(consumers) >= count else None

    return wait_until(found, f"큐의 소비자 {count}개: {queue}", WAIT_SECONDS)


def test_on_rabbitmq_4_each_consumer_of_the_lesson_worker_has_its_own_prefetch_and_no_channel_is_global(
    lesson_processes,
):
    assert broker.server_major() >= 4
    for queue in (tasks.PRIORITY_QUEUE.name, tasks.QUORUM_QUEUE.name):
        (consumer,) = wait_for_consumers(queue)
        assert consumer["prefetch_count"] == 1  # worker_concurrency=1 × worker_prefetch_multiplier=1, 소비자마다
        channel = channel_named(consumer["channel_details"]["name"])
        assert channel.get("global_prefetch_count", 0) == 0  # 4.3의 채널에는 이 값이 아예 없다


def test_kombu_decides_from_the_server_version_never_to_ask_rabbitmq_4_for_global_qos():
    with Connection(RABBITMQ_URL) as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.qos_semantics_matches_spec is True  # 4.3: 소비자마다의 QoS
        from practice02.tasks import app as plain_app

        for app in (plain_app, tasks.app):  # 쿼럼 큐가 없는 앱도, 있는 앱도
            assert Tasks.qos_global(None, SimpleNamespace(connection=connection, app=app)) is False
    # 같은 함수가 버전만 보고 정한다: 3.3 ~ 3.x 는 global, 4.0 부터는 아니다.
    transport = pyamqp.Transport(Connection(RABBITMQ_URL))
    for version, matches in (("3.13.7", False), ("4.0.0", True), ("4.3.6", True)):
        server = SimpleNamespace(server_properties={"product": "RabbitMQ", "version": version})
        assert transport.qos_semantics_matches_spec(server) is matches


def test_rabbitmq_4_3_ignores_a_global_qos_request_and_applies_it_per_consumer():
    with Connection(RABBITMQ_URL) as connection:
        channel = connection.channel()
        channel.basic_qos(0, 7, True)  # global=True: 거부하지 않는다
        queue = channel.queue_declare("", exclusive=True).queue
        channel.basic_consume(queue, callback=lambda message: None)
        channel.queue_declare(queue, passive=True)  # 채널이 아직 열려 있다(닫혔다면 여기서 예외)
        assert channel.is_open
        (consumer,) = wait_for_consumers(queue)
        assert consumer["prefetch_count"] == 7  # 소비자마다의 prefetch로 적용되었다
        assert channel_named(consumer["channel_details"]["name"]).get("global_prefetch_count", 0) == 0


def _sending_app(*, declare: bool) -> Celery:
    """작업을 보내기만 하는 다른 앱(웹 앱 같은). 쿼럼 큐를 x-queue-type 없이 적었다."""
    producer = Celery("practice12.producer", broker=RABBITMQ_URL, set_as_current=False)
    queue = Queue(
        tasks.QUORUM_QUEUE.name,
        Exchange(tasks.QUORUM_QUEUE.exchange.name, type="topic"),
        routing_key=tasks.QUORUM_QUEUE.routing_key,
        no_declare=not declare,
    )
    producer.conf.update(task_queues=[queue], task_default_queue=queue.name)
    return producer


def test_native_delayed_delivery_is_decided_by_the_sending_apps_own_queues(lesson_processes):
    rabbit, _ = lesson_processes
    producer = _sending_app(declare=False)
    run = journal.new_run()
    sent_at = time.time()
    with producer.connection_for_write() as connection:
        held = producer.send_task(
            tasks.note.name, args=(run, "countdown"), countdown=tasks.COUNTDOWN_SECONDS, connection=connection
        )
    rabbit.wait_for_log(rf"practice12\.tasks\.note\[{held.id}\] received", WAIT_SECONDS)
    assert time.time() - sent_at < tasks.COUNTDOWN_SECONDS - 0.5  # 워커가 곧바로 받았다: 브로커가 기다리지 않았다
    tasks.note.apply_async((run, "바로"), queue=tasks.QUORUM_QUEUE.name)
    starts = {entry.what: entry.at for entry in journal.wait_for(run, 2, timeout=WAIT_SECONDS)}
    # 워커가 쥔 countdown 작업이 쿼럼 큐 소비자의 자리를 차지해, 바로 보낸 작업도 countdown이 끝나기를 기다렸다.
    assert starts["countdown"] - sent_at >= tasks.COUNTDOWN_SECONDS - 0.5
    assert starts["바로"] >= starts["countdown"]


def test_a_sending_app_that_declares_the_quorum_queue_without_its_type_is_refused(lesson_processes):
    producer = _sending_app(declare=True)
    refused = r"inequivalent arg 'x-queue-type'.*received 'classic' but current is 'quorum'"
    with producer.connection_for_write() as connection, pytest.raises(PreconditionFailed, match=refused):
        producer.send_task(tasks.note.name, args=(journal.new_run(), "refused"), countdown=1, connection=connection)
