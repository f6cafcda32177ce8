"""practice12의 두 앱이 함께 쓰는 실행 기록. tasks.py 는 RabbitMQ 앱, redis_tasks.py 는 Redis 앱이다.

작업이 시작할 때마다 Redis 목록에 (이름표, 시각)을 적는다. call_tasks 와 테스트는 이것으로 순서와 때와 횟수를 읽는다.
"""

import time

import redis
from celery.exceptions import TimeoutError

from global_config import REDIS_URL

TTL_SECONDS = 3600
_redis = redis.Redis.from_url(REDIS_URL, decode_responses=True)


def note_start(key, label):
    _redis.rpush(key, f"{label} {time.time()}")
    _redis.expire(key, TTL_SECONDS)


def started(key):
    """key의 실행 기록을 시작한 순서대로 (이름표, 시각)으로 돌려준다."""
    return [(label, float(at)) for label, at in (entry.rsplit(" ", 1) for entry in _redis.lrange(key, 0, -1))]


def wait_for_starts(key, count, timeout):
    """실행 기록에 count 개가 적힐 때까지 기다리고 실행 기록을 돌려준다. 길어야 timeout 초 기다린다.

    제때 적히지 않으면 결과를 기다리는 get() 처럼 celery.exceptions.TimeoutError 를 낸다. 워커가 없다는 뜻이다.
    """
    deadline = time.monotonic() + timeout
    while _redis.llen(key) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{timeout}초 안에 작업 {count}개가 시작하지 않았습니다. 시작한 작업은 {_redis.llen(key)}개입니다."
            )
        time.sleep(0.05)
    return started(key)
