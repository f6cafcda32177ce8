"""세 서비스(RabbitMQ, PostgreSQL, Redis)가 응답하는지 미리 확인한다.

실습이나 테스트가 한참 돌다가 알 수 없는 traceback으로 멈추는 대신, 시작하기 전에
어느 서비스가 어느 주소에서 응답하지 않는지, 어떻게 켜는지를 한 번에 알려 준다.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kombu.utils.url import maybe_sanitize_url

import global_config

CONNECT_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class Service:
    name: str
    env_var: str  # global_config 의 변수 이름이자 그 값을 바꾸는 환경 변수 이름
    compose_service: str
    probe: Callable[[str], None]  # 연결에 실패하면 예외를 던진다

    @property
    def url(self) -> str:
        return getattr(global_config, self.env_var)


def _probe_rabbitmq(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)


def _probe_postgres(url: str) -> None:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(
        url.removeprefix("db+"),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    finally:
        engine.dispose()


def _probe_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


SERVICES = (
    Service("RabbitMQ", "RABBITMQ_URL", "rabbitmq", _probe_rabbitmq),
    Service("PostgreSQL", "POSTGRES_URL", "postgres", _probe_postgres),
    Service("Redis", "REDIS_URL", "redis", _probe_redis),
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def describe_unreachable(service: Service, exc: BaseException) -> str:
    """연결하지 못한 서비스를 이름, 주소, 원인, 켜는 방법과 함께 설명한다."""
    return (
        f"{service.name}에 연결할 수 없습니다: {maybe_sanitize_url(service.url)}\n"
        f"  원인: {type(exc).__name__}: {_first_line(exc)}\n"
        f"  켜기: docker compose up -d {service.compose_service}"
        f"  (다른 주소를 쓰려면 환경 변수 {service.env_var})"
    )


def unreachable_services() -> list[str]:
    """응답하지 않는 서비스마다 설명 한 덩어리. 모두 응답하면 빈 목록."""
    problems = []
    for service in SERVICES:
        try:
            service.probe(service.url)
        except Exception as exc:  # 어떤 실패든 사람이 읽을 말로 바꾼다
            problems.append(describe_unreachable(service, exc))
    return problems
