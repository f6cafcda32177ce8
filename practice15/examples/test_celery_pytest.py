"""celery.contrib.pytest 의 celery_worker: 테스트 프로세스 안의 스레드에서 실행되는 워커.

브로커와 결과 백엔드는 실제 서비스다(global_config). 워커는 solo 풀로 테스트 프로세스 안에서 실행되므로, 풀
프로세스를 죽여서 거는 시간 제한은 걸리지 않는다.
실행:  python -m pytest practice15/examples/test_celery_pytest.py
"""

import os

import pytest

from practice15 import tasks
from practice15.tasks import add, pair, slow

# Celery 5의 pytest 플러그인은 저절로 켜지지 않는다. 이 모듈에서 켠다.
pytest_plugins = ("celery.contrib.pytest",)

WAIT_SECONDS = 10


@pytest.fixture
def celery_app():
    # 플러그인의 celery_app 은 celery_config 로 새로 만든 앱이다. 기본 설정은 메모리 안의 브로커와 결과
    # 백엔드다(memory://, cache+memory://). 이 실습의 작업은 delay() 로 자기 앱(RabbitMQ, Redis)에 보내므로, 그
    # 앱(tasks.app)을 넘긴다.
    # 주소와 설정은 tasks.py 에 있는 그대로다.
    # 하나만 바꾼다. broker_heartbeat 가 켜져 있으면(기본값 120초) 이 스레드 워커는 멈추는 데 10초쯤 걸린다.
    # 플러그인은 10초(shutdown_timeout)까지만 기다리고 그때도 멈추지 않았으면 RuntimeError를 내므로, 테스트
    # 동안에는 heartbeat를 끈다.
    before = tasks.app.conf.broker_heartbeat
    tasks.app.conf.broker_heartbeat = 0
    try:
        yield tasks.app
    finally:
        tasks.app.conf.broker_heartbeat = before  # 테스트 전의 값으로 되돌린다


@pytest.fixture(scope="session")
def celery_includes():
    # 스레드 워커는 시작할 때 celery.ping 작업으로 확인한다. 그 작업을 앱에 등록하는 모듈이다.
    return ("celery.contrib.testing.tasks",)


def test_round_trip_through_the_broker(celery_worker):
    assert add.delay(2, 3).get(timeout=WAIT_SECONDS) == 5
    assert pair.delay(1, 2).get(timeout=WAIT_SECONDS) == [1, 2]  # 실제 경로라서 JSON을 거친다


def test_time_limit_is_not_enforced(celery_worker):
    assert slow.delay().get(timeout=WAIT_SECONDS) == "끝"  # 실제 워커라면 TimeLimitExceeded


def test_the_worker_runs_inside_this_process(celery_worker):
    assert celery_worker.pool.info["processes"] == [os.getpid()]  # solo 풀은 풀 프로세스를 띄우지 않는다
