"""practice12 README: 워커를 스스로 띄우는 테스트 — 오래 도는 acks_late 작업의 중복(Redis), consumer_timeout
(클래식 큐는 거부, 쿼럼 큐는 되풀이), 브로커 재시작.

test_practice12 의 모듈 워커가 같은 큐를 소비하면 결과가 섞이므로 모듈을 나눴다.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu.exceptions import OperationalError

from course import never_within, wait_until
from global_config import REDIS_URL
from playground import PROJECT_ROOT, broker
from playground.broker import queue_counts
from playground.isolation import REDIS_DATABASES
from playground.lessons import available_lessons, purge
from playground.workers import Worker, running
from practice12 import consumer_timeout, redis_tasks, tasks
from practice12.tasks import journal
from tests import WAIT_SECONDS, redis_broker_app
from tests.readme import readme
from tests.test_practice12 import channel_named, wait_for_consumers

LESSON = "practice12"
SERVICES = PROJECT_ROOT / ".ci" / "services"


def test_a_redis_task_longer_than_the_visibility_timeout_runs_again_while_the_first_run_goes_on():
    redis_tasks.app.control.purge()
    run = journal.new_run()
    worker = Worker(LESSON, module="redis_tasks", concurrency=2)
    try:
        with running(worker):
            redis_tasks.hold_acks_late.delay(run, "long", tasks.LONG_COUNTDOWN_SECONDS)
            runs = journal.wait_for(run, 2, timeout=WAIT_SECONDS)
            assert [entry.what for entry in runs] == ["long", "long"]
            assert runs[1].at - runs[0].at < tasks.LONG_COUNTDOWN_SECONDS  # 첫 실행이 끝나기 전에
    finally:
        # 되풀이를 끊는다: 워커가 멈춘 뒤 큐와 'unacked' 기록을 지운다.
        redis_tasks.app.control.purge()
        redis.Redis.from_url(REDIS_URL).delete("unacked", "unacked_index")


def _run_consumer_timeout_script() -> subprocess.CompletedProcess[str]:
    """학습자가 하듯 `python -m practice12.consumer_timeout` 을 돌린다."""
    command = [sys.executable, "-m", "practice12.consumer_timeout"]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)


def test_x_consumer_timeout_on_a_classic_queue_is_refused_and_the_worker_exits():
    worker = Worker(LESSON, module="consumer_timeout", env={"PRACTICE12_QUEUE_TYPE": "classic"}, fast_start=True)
    worker.start()
    try:
        worker.wait_for_log(r"PRECONDITION_FAILED", WAIT_SECONDS)
        assert "invalid arg 'x-consumer-timeout'" in worker.log
        assert worker.proc.wait(WAIT_SECONDS) != 0
    finally:
        worker.stop()


@pytest.mark.early
def test_a_quorum_queue_consumer_timeout_redelivers_a_long_task_until_it_is_revoked():
    worker = Worker(LESSON, module="consumer_timeout", concurrency=None)  # 앱의 worker_concurrency=2
    with running(worker):
        run = _run_consumer_timeout_script()
        assert run.returncode == 0, run.stdout + run.stderr
        assert "revoke 한 뒤 12초 동안 새로 시작한 실행 → 0번 (모두 2번)" in run.stdout
        assert "Connection to broker lost" in worker.log
        assert "ConsumerCancelled" in worker.log and "'Basic.cancel'" in worker.log
        assert worker.log.count("Connected to amqp://") >= 2  # 다시 연결했다
        assert "Discarding revoked task: practice12.consumer_timeout.long_job" in worker.log
        # 두 번째 실행도 끊겨 세 번째로 배달되었다(그것을 revoke가 버렸다): 그대로 두면 되풀이된다.
        received = re.findall(r"consumer_timeout\.long_job\[([0-9a-f-]+)\] received", worker.log)
        assert len(received) >= 3 and len(set(received)) == 1
        assert "Couldn't ack" in worker.log  # 첫 실행의 ack는 끊긴 연결로 갈 수 없다
        assert "connection already closed" in worker.log
    # 워커가 멈춘 뒤에도 큐는 비어 있다: ack 되지 않은 채 돌아올 메시지가 없었다.
    assert queue_counts(consumer_timeout.TIMEOUT_QUEUE.name) == (0, 0)


def test_the_consumer_timeout_script_without_a_worker_says_what_to_start_and_takes_its_message_back():
    consumer_timeout.app.control.purge()
    run = _run_consumer_timeout_script()
    assert run.returncode == 1
    assert "10초 안에 시작하지 않았습니다. 다른 터미널에서 띄우세요:" in run.stdout
    assert f"    {consumer_timeout.WORKER_COMMAND}\n" in run.stdout
    assert consumer_timeout.WORKER_COMMAND in readme("practice12/README.md")
    # 나중에 뜬 워커가 아무도 끊어 주지 않는 되풀이를 시작하지 않도록 보낸 메시지를 거두었다.
    assert queue_counts(consumer_timeout.TIMEOUT_QUEUE.name) == (0, 0)


def _spare(*args: str) -> str:
    done = subprocess.run(["bash", str(SERVICES), "spare", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (
        "the broker restart test needs the second RabbitMQ node of .ci/services "
        f"(bash .ci/services start): {done.stderr}"
    )
    return done.stdout.strip()


# 두 번째 노드는 하나뿐이다. 그것을 멈췄다 띄우는 테스트들(다른 모듈의 것도)이 이 잠금으로 한 번에 하나씩 쓴다.
SPARE_LOCK = Path(tempfile.gettempdir()) / "celery-playground-spare.lock"


@pytest.fixture
def spare_broker():
    """멈췄다 다시 띄워도 되는, 이 테스트만의 RabbitMQ 4.3 노드 (.ci/services 가 띄운 것)."""
    with SPARE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        url = _spare("url")
        _spare("start")
        try:
            yield url
        finally:
            _spare("stop")


@pytest.mark.early
@pytest.mark.xdist_group("spare_broker")  # 예비 노드를 멈췄다 띄우는 테스트는 한 프로세스에서 차례로
def test_the_worker_keeps_consuming_after_the_broker_restarts(spare_broker):
    app = tasks.app
    run = journal.new_run()
    worker = Worker(LESSON, env={"RABBITMQ_URL": spare_broker})
    worker.start()
    try:
        # 준비는 로그로 본다: ping은 이 테스트 프로세스의 브로커로 가므로 이 워커에 닿지 않는다.
        worker.wait_for_log(r"ready\.", WAIT_SECONDS)
        with app.connection_for_write(spare_broker) as conn:
            tasks.hold_acks_late.apply_async((run, "busy", tasks.LONG_COUNTDOWN_SECONDS), connection=conn)
        journal.wait_for(run, 1, timeout=WAIT_SECONDS)
        _spare("stop")  # acks_late 작업이 도는 중에
        worker.wait_for_log(r"Connection to broker lost", WAIT_SECONDS)
        worker.wait_for_log(r"Cannot connect to amqp://\S+:5674//.*\n.*Trying again in 2\.00 seconds", WAIT_SECONDS)
        with app.connection_for_write(spare_broker) as conn, pytest.raises(OperationalError):
            tasks.note.apply_async((run, "during"), connection=conn)  # 브로커가 없는 동안 보내면: 몇 번 해 보고 예외
        _spare("start")
        worker.wait_for_log(
            r"Connected to amqp://guest:\*\*@127\.0\.0\.1:5674//(.|\n)*Connected to amqp", WAIT_SECONDS * 2
        )
        with app.connection_for_write(spare_broker) as conn:
            tasks.note.apply_async((run, "after"), connection=conn)
        runs = Counter(entry.what for entry in journal.wait_for(run, 3, timeout=WAIT_SECONDS))
        # 다시 연결한 워커가 새 작업을 받고, ack 하지 못한 acks_late 작업은 다시 배달되어 한 번 더 돈다.
        assert runs == {"busy": 2, "after": 1}
        worker.wait_for_log(r"Couldn't ack", WAIT_SECONDS)
    finally:
        worker.stop()


HELD_SECONDS = 8  # 관리 API의 채널 통계(5초마다)가 바뀌는 것을 볼 만큼 긴 countdown


def test_on_rabbitmq_4_a_held_countdown_takes_the_slot_even_without_quorum_queues():
    # practice02의 앱에는 쿼럼 큐가 없다. 그래도 kombu가 RabbitMQ 4.x 에 global QoS를 묻지 않으므로 prefetch는
    # 소비자마다 고정이다.
    from practice02.tasks import add

    assert broker.server_major() >= 4
    add.app.control.purge()
    worker = Worker("practice02", concurrency=1, extra_args=["--prefetch-multiplier=1"])
    try:
        with running(worker):
            (consumer,) = wait_for_consumers(add.app.conf.task_default_queue)
            assert consumer["prefetch_count"] == 1
            channel = consumer["channel_details"]["name"]
            assert channel_named(channel).get("global_prefetch_count", 0) == 0
            held = add.apply_async((1, 1), countdown=HELD_SECONDS)
            sent_at = time.monotonic()
            worker.wait_for_log(rf"practice02\.tasks\.add\[{held.id}\] received", WAIT_SECONDS)
            # 워커는 자리를 하나 늘리려고 basic.qos(2) 를 보낸다: 채널의 값은 바뀌지만 소비자의 prefetch는 1 그대로다.
            # countdown이 끝나기 전에 보여야 한다.
            # 관리 API가 채널을 보여 주고도 그 통계(prefetch_count)는 다음 수집 때 채우기도 한다.
            wait_until(lambda: channel_named(channel).get("prefetch_count") == 2, "채널의 prefetch 2", HELD_SECONDS - 1)
            (consumer,) = wait_for_consumers(add.app.conf.task_default_queue)
            assert consumer["prefetch_count"] == 1
            assert add.delay(2, 2).get(timeout=WAIT_SECONDS) == 4
            assert time.monotonic() - sent_at >= HELD_SECONDS - 0.5  # countdown이 끝나기를 기다렸다
    finally:
        add.app.control.purge()
    assert "Global QoS is disabled" not in worker.log  # 쿼럼 큐 때문이 아니다: kombu가 서버 버전을 보고 정했다


def _database(url: str) -> int:
    return int(urllib.parse.urlsplit(url).path.lstrip("/") or 0)


def _unused_redis_url() -> str:
    """어느 테스트 프로세스도 쓰지 않는 Redis 데이터베이스: 마지막 번호(15).

    테스트 프로세스 N개는 1…N번을 쓴다(playground/isolation.py). 이 테스트는 한 번만 실행되므로 다른 프로세스와
    겹칠 일도 없다.
    """
    processes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    other = REDIS_DATABASES - 1
    assert other > processes, f"{processes} test processes use Redis databases up to {processes}: none left unused"
    assert other != _database(REDIS_URL)
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(REDIS_URL)._replace(path=f"/{other}"))


def _ready(worker: Worker) -> Worker:
    # 다른 데이터베이스의 워커는 이 프로세스의 브로커로 가는 ping을 받지 못한다: 준비는 로그로 본다.
    worker.start()
    worker.wait_for_log(r"ready\.", WAIT_SECONDS)
    return worker


@pytest.mark.parametrize("same_database", [True, False], ids=["same_database", "other_database"])
def test_the_shortest_visibility_timeout_in_a_redis_database_restores_every_apps_messages(same_database):
    client = redis.Redis.from_url(REDIS_URL)
    for app in (redis_broker_app.app, redis_tasks.app):
        app.control.purge()
    client.delete("unacked", "unacked_index")
    run = journal.new_run()
    long_timeout = Worker("tests", module="redis_broker_app", concurrency=None)  # visibility_timeout 3600초
    short_env = {} if same_database else {"REDIS_URL": _unused_redis_url()}
    short_timeout = Worker(LESSON, module="redis_tasks", concurrency=None, env=short_env)  # 2초
    try:
        _ready(long_timeout)
        _ready(short_timeout)
        held = redis_broker_app.note.apply_async((run, "held"), countdown=tasks.LONG_COUNTDOWN_SECONDS)
        long_timeout.wait_for_log(rf"tests\.redis_broker_app\.note\[{held.id}\] received", WAIT_SECONDS)
        journal.wait_for(run, 1, timeout=WAIT_SECONDS)
        received = f"tests.redis_broker_app.note[{held.id}] received"
        if same_database:
            # 3600초 앱의 메시지를 2초 앱의 워커가 되돌렸다: 같은 작업 id를 두 번 이상 받아 두 번 이상 실행했다.
            journal.wait_for(run, 2, timeout=WAIT_SECONDS)
            assert long_timeout.log.count(received) >= 2
        else:
            # 늦게 오는 사본이 없다.
            settle = redis_tasks.VISIBILITY_TIMEOUT_SECONDS + tasks.SETTLE_SECONDS
            never_within(settle, lambda: journal.whats(run)[1:], "3600초 앱의 작업이 또 실행됨")
            assert long_timeout.log.count(received) == 1
    finally:
        long_timeout.stop()
        short_timeout.stop()
        for app in (redis_broker_app.app, redis_tasks.app):
            app.control.purge()
        client.delete("unacked", "unacked_index")


def test_practice12_redis_tasks_is_the_courses_only_redis_broker_app_without_a_key_prefix():
    # README: 그래서 이 실습의 2초가 REDIS_URL 의 데이터베이스의 키를 다른 Redis 브로커 앱과 나누지 않는다.
    # global_keyprefix 를 붙인 앱(practice13.redis_tasks, practice14.redis_tasks)은 키가 다르다.
    # tests/test_practice13_redis.py 가 그 앱의 메시지를 이 실습의 워커가 되돌리지 않는 것을 확인한다.
    prefixed = set()
    redis_brokers = set()
    for lesson in available_lessons():
        for path in sorted((PROJECT_ROOT / lesson).glob("*.py")):
            if path.stem in ("__init__", "call_tasks"):
                continue
            module = importlib.import_module(f"{lesson}.{path.stem}")
            app = getattr(module, "app", None)
            if isinstance(app, Celery) and app.conf.broker_url.startswith("redis"):
                options = app.conf.broker_transport_options or {}
                (prefixed if options.get("global_keyprefix") else redis_brokers).add(module.__name__)
    assert redis_brokers == {"practice12.redis_tasks"}
    assert prefixed == {"practice13.redis_tasks", "practice14.redis_tasks"}


def test_the_redis_broker_keeps_one_list_per_priority():
    redis_tasks.app.control.purge()
    client = redis.Redis.from_url(REDIS_URL)
    redis_tasks.note.apply_async((journal.new_run(), "5"), priority=5, countdown=60)
    redis_tasks.note.apply_async((journal.new_run(), "none"), countdown=60)
    try:
        assert client.llen("practice12.redis\x06\x165") == 1  # 우선순위 5의 목록 (kombu: 큐 이름 + 구분자 + 숫자)
        assert client.llen("practice12.redis") == 1  # 우선순위 0(과 없음)의 목록은 큐 이름 그대로
    finally:
        redis_tasks.app.control.purge()


def test_purging_the_lesson_empties_the_redis_broker_queue_too():
    # 이 모듈에는 모듈 내내 도는 워커가 없다: 보낸 메시지는 워커가 가져가지 않고 큐에 있다.
    redis_tasks.note.apply_async((journal.new_run(), "left"), countdown=60)
    client = redis.Redis.from_url(REDIS_URL)
    assert client.type("practice12.redis") == b"list" and client.llen("practice12.redis") >= 1  # README: 큐는 목록
    assert purge(LESSON) >= 1
    assert redis_tasks.app.control.purge() == 0
