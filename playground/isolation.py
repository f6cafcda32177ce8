"""테스트 프로세스마다 따로 쓰는 브로커, 결과 데이터베이스, Redis 데이터베이스.

테스트는 여러 프로세스에서 함께 실행된다(pytest-xdist). 프로세스마다 세 서비스 안에 자기 자리를 만들고,
세 URL 환경 변수를 그 자리로 바꾼다. 실습의 웹 서버에는 프로세스마다 다른 포트를 준다:

- RabbitMQ: 가상 호스트 `celery-playground-<프로세스>` (큐, exchange, 바인딩이 모두 가상 호스트 안에 있다)
- PostgreSQL: 데이터베이스 `celery_jobs_<프로세스>`
- Redis: 데이터베이스 번호 (gw0 → 1, gw1 → 2 …, 프로세스 하나로 실행하면 1)
- 실습의 웹 서버: 포트 (`<실습>_URL` 환경 변수, 예: PRACTICE16_URL=http://127.0.0.1:20116). 테스트가 띄우는 웹
  서버와 call_tasks 가 이 주소를 쓴다. 학습자는 실습의 기본 포트(8016 등)를 쓴다.

실습 코드는 바꾸지 않는다. 실습은 global_config 의 URL을 읽고, 그 URL이 환경 변수에서 오기 때문이다.
테스트가 띄우는 워커와 call_tasks 도 환경 변수를 물려받아 같은 자리를 쓴다. 자리는 세션을 시작할 때마다
비운 채로 새로 만든다(지난 실행이 남긴 메시지와 결과가 섞이지 않게).
"""

from __future__ import annotations

import importlib
import os
import re
import urllib.parse

import redis
import sqlalchemy
from sqlalchemy.pool import NullPool

import global_config
from course import NotInTime, wait_until, web_url_variable
from playground import broker
from playground.services import CONNECT_TIMEOUT_SECONDS, sqlalchemy_url

REDIS_DATABASES = 16  # Redis의 기본 databases 설정
# 테스트 프로세스의 웹 서버 포트: WEB_PORT_BASE + 100 × Redis 번호 + 실습 번호(gw0의 practice16 → 20116).
# 운영체제가 나가는 연결에 골라 주는 포트(리눅스 기본 32768부터)와 겹치지 않는다.
WEB_PORT_BASE = 20000
VHOST_SETTLE_SECONDS = 10


def slot(worker_id: str) -> str:
    """xdist 워커 이름(gw0, gw1 …)이나 "main"(프로세스 하나로 실행할 때)."""
    if not re.fullmatch(r"gw\d+|main", worker_id):
        raise ValueError(f"unexpected test process name: {worker_id!r}")
    return worker_id


def redis_db(worker_id: str) -> int:
    number = 1 if worker_id == "main" else int(worker_id[2:]) + 1
    if number >= REDIS_DATABASES:
        raise ValueError(f"{worker_id}: Redis has only databases 0..{REDIS_DATABASES - 1}; use fewer test processes")
    return number


def isolated_urls(worker_id: str) -> dict[str, str]:
    """지금 global_config 가 가리키는 서버들 위에서, 이 프로세스만 쓸 세 URL."""
    name = slot(worker_id)
    rabbit = urllib.parse.urlsplit(global_config.RABBITMQ_URL)
    rabbit = rabbit._replace(path="/" + urllib.parse.quote(f"celery-playground-{name}", safe=""))
    redis_url = urllib.parse.urlsplit(global_config.REDIS_URL)._replace(path=f"/{redis_db(name)}")
    postgres = sqlalchemy_url(global_config.POSTGRES_URL).set(database=f"celery_jobs_{name}")
    return {
        "RABBITMQ_URL": urllib.parse.urlunsplit(rabbit),
        "REDIS_URL": urllib.parse.urlunsplit(redis_url),
        "POSTGRES_URL": "db+" + postgres.render_as_string(hide_password=False),
    }


def web_urls(worker_id: str) -> dict[str, str]:
    """이 프로세스의 실습마다의 웹 서버 주소(`<실습>_URL` → http://127.0.0.1:포트). 웹 서버가 없는 실습의 변수는
    아무도 읽지 않는다.
    """
    from playground.lessons import available_lessons

    base = WEB_PORT_BASE + 100 * redis_db(slot(worker_id))
    return {
        web_url_variable(lesson): f"http://127.0.0.1:{base + int(lesson.removeprefix('practice'))}"
        for lesson in available_lessons()
    }


def _vhost_exists(name: str) -> bool:
    try:
        broker.management("GET", f"vhosts/{name}")
    except broker.ManagementError as exc:
        if "HTTP 404" in str(exc):
            return False
        raise
    return True


def _wait_for_vhost(name: str, exists: bool) -> None:
    # 가상 호스트를 지우고 만드는 일은 API가 답한 뒤에도 브로커 안에서 조금 더 이어진다(RabbitMQ 4.x).
    try:
        wait_until(lambda: _vhost_exists(name) == exists, f"vhost {name!r}", VHOST_SETTLE_SECONDS)
    except NotInTime:
        state = "missing" if exists else "there"
        raise broker.ManagementError(f"vhost {name!r} still {state} after {VHOST_SETTLE_SECONDS} s") from None


def _fresh_vhost(url: str) -> None:
    name = broker.quoted(broker.vhost(url))
    user = urllib.parse.unquote(urllib.parse.urlsplit(url).username or "guest")
    if _vhost_exists(name):
        broker.management("DELETE", f"vhosts/{name}")
        _wait_for_vhost(name, exists=False)
    broker.management("PUT", f"vhosts/{name}")
    _wait_for_vhost(name, exists=True)
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    broker.management("PUT", f"permissions/{name}/{broker.quoted(user)}", everything)


def _fresh_database(url: str) -> None:
    target = sqlalchemy_url(url)
    admin = sqlalchemy.create_engine(
        target.set(database="postgres"),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},  # 응답하지 않는 서버에서 멈추지 않는다
    )
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def _fresh_redis_db(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def prepare(worker_ids: list[str]) -> None:
    """테스트 프로세스들의 자리를 비운 채로 새로 만든다. 병렬이면 조정 프로세스가 워커를 띄우기 전에 한 번 부른다."""
    for worker_id in worker_ids:
        urls = isolated_urls(worker_id)
        _fresh_vhost(urls["RABBITMQ_URL"])
        _fresh_database(urls["POSTGRES_URL"])
        _fresh_redis_db(urls["REDIS_URL"])


def use(worker_id: str) -> dict[str, str]:
    """이 프로세스(와 그 하위 프로세스)가 worker_id 의 자리를 쓰게 한다: 환경 변수와 global_config 를 바꾼다."""
    urls = isolated_urls(worker_id)
    os.environ.update(urls)
    os.environ.update(web_urls(worker_id))
    importlib.reload(global_config)
    return urls
