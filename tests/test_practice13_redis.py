"""practice13 README: Redis 브로커에서 배포 도중에 멈춘 워커의 메시지. SIGKILL이면 'unacked' 해시에 남아
visibility_timeout 이 지나야 돌아오고, 워커가 스스로 멈추면(soft shutdown) kombu가 그 자리에서 되돌린다.
"""

from __future__ import annotations

import os
import signal

import pytest
import redis
from kombu.transport.redis import Channel as RedisChannel

from course import Journal, never_within
from global_config import REDIS_URL
from playground.workers import Worker, running
from practice12 import redis_tasks as practice12_redis_tasks
from practice13 import redis_tasks
from practice13.redis_tasks import KEY_PREFIX, VISIBILITY_TIMEOUT_SECONDS, work, work_acks_late
from practice13.tasks import WORK_SECONDS, journal
from tests import WAIT_SECONDS

LESSON = "practice13"
QUEUE_KEY = KEY_PREFIX + redis_tasks.app.conf.task_default_queue  # 큐는 Redis 목록이다. 키 앞에 global_keyprefix
UNACKED_KEY = KEY_PREFIX + "unacked"


@pytest.fixture
def client():
    client = redis.Redis.from_url(REDIS_URL)
    redis_tasks.app.control.purge()
    client.delete(UNACKED_KEY, KEY_PREFIX + "unacked_index")
    yield client
    redis_tasks.app.control.purge()
    client.delete(UNACKED_KEY, KEY_PREFIX + "unacked_index")


def _worker(env=None) -> Worker:
    return Worker(LESSON, module="redis_tasks", concurrency=2, env=env)


def _send_both() -> tuple[str, str]:
    early, late = Journal.new_run(), Journal.new_run()
    work.delay(early, WORK_SECONDS)
    work_acks_late.delay(late, WORK_SECONDS)
    for run in (early, late):
        journal.wait_for(run, 1, what="시작", timeout=WAIT_SECONDS)
    return early, late


@pytest.mark.early
def test_on_redis_a_sigkilled_acks_late_task_comes_back_only_after_the_visibility_timeout(client):
    old = _worker()
    try:
        old.start()
        old.wait_ready()
        early, late = _send_both()
        assert client.hlen(UNACKED_KEY) == 1  # 시작 시 ack 작업은 이미 ack해 지웠다. 남은 것은 acks_late 작업이다
        os.killpg(old.proc.pid, signal.SIGKILL)
        old.proc.wait(WAIT_SECONDS)
    finally:
        old.stop()
    # 되돌릴 틈이 없었다. 메시지는 큐가 아니라 'unacked' 해시에 있다.
    assert client.llen(QUEUE_KEY) == 0
    assert client.hlen(UNACKED_KEY) == 1
    # 새 워커와 함께, 같은 데이터베이스에서 visibility_timeout 2초인 practice12의 Redis 브로커 워커도 띄운다.
    # global_keyprefix 로 키를 나눴으므로 그 워커는 이 메시지를 되돌리지 않는다.
    other = Worker("practice12", module="redis_tasks", concurrency=1)
    with running(_worker(), other):
        runs = journal.wait_for(late, 2, what="시작", timeout=WAIT_SECONDS + VISIBILITY_TIMEOUT_SECONDS)
        starts = [entry.at for entry in runs if entry.what == "시작"]
        # 받아 간 때로부터 visibility_timeout 이 지나서야 돌아왔다(아래쪽 한계라 부하에도 참이다).
        assert starts[1] - starts[0] >= VISIBILITY_TIMEOUT_SECONDS - 1
        journal.wait_for(late, 1, what="끝", timeout=WAIT_SECONDS + WORK_SECONDS)
    # 시작 시 ack 작업은 돌아오지 않았다. acks_late 작업은 두 번 시작했고 효과는 한 번이다.
    assert journal.whats(early).count("시작") == 1 and "끝" not in journal.whats(early)
    assert journal.whats(late).count("효과") == 1
    assert practice12_redis_tasks.app.conf.broker_transport_options["visibility_timeout"] < VISIBILITY_TIMEOUT_SECONDS


@pytest.mark.parametrize("soft_seconds", [None, "0"], ids=["soft_shutdown", "cold_shutdown"])
def test_on_redis_a_soft_or_cold_shutdown_puts_the_cut_acks_late_message_back_at_once(client, soft_seconds):
    # SIGQUIT을 보낸다. Compose의 `stop_signal: SIGQUIT` 과 같다.
    # 앱의 worker_soft_shutdown_timeout(2초)이면 soft shutdown이다.
    # PRACTICE13_SOFT_SHUTDOWN_SECONDS=0 이면 cold shutdown이다.
    env = {} if soft_seconds is None else {"PRACTICE13_SOFT_SHUTDOWN_SECONDS": soft_seconds}
    old = _worker(env=env)
    try:
        old.start()
        old.wait_ready()
        early, late = _send_both()
        os.kill(old.proc.pid, signal.SIGQUIT)
        old.proc.wait(WAIT_SECONDS)
    finally:
        old.stop()
    assert "worker: Cold shutdown (MainProcess)" in old.log
    assert ("Initiating Soft Shutdown, terminating in 2.0 seconds" in old.log) is (soft_seconds is None)
    assert "Restoring 1 unacknowledged message(s)" in old.log
    assert client.llen(QUEUE_KEY) == 1  # 멈추기 전에 kombu가 큐로 되돌렸다
    assert client.hlen(UNACKED_KEY) == 0
    never_within(1, lambda: "끝" in journal.whats(late) + journal.whats(early), "끊긴 작업의 끝")


def test_kombus_defaults_put_a_sigkilled_message_back_an_hour_after_it_was_taken_scanning_every_100_seconds():
    # 이 앱은 둘 다 줄였다. kombu의 기본값은 visibility_timeout 3600초다.
    # 되돌릴 메시지는 10초 간격으로 확인하되 10번째마다 실제로 찾는다.
    assert RedisChannel.visibility_timeout == 3600
    assert RedisChannel.unacked_restore_interval * RedisChannel.unacked_restore_throttle == 100
