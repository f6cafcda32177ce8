"""모든 테스트가 진짜 RabbitMQ, PostgreSQL, Redis 와 진짜 `celery worker` 하위 프로세스를 쓴다."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

import global_config
from course import unreachable_services
from playground.runner import EXIT_SERVICES_DOWN


def pytest_sessionstart(session: pytest.Session) -> None:
    # 서비스가 없으면 테스트를 건너뛰지 않고, 무엇이 없는지 말하며 곧바로 실패한다.
    problems = unreachable_services()
    if problems:
        pytest.exit(
            "서비스가 응답하지 않아 테스트를 시작할 수 없습니다.\n" + "\n".join(problems), returncode=EXIT_SERVICES_DOWN
        )


def _engine(database: str | None = None) -> sqlalchemy.Engine:
    url = sqlalchemy.make_url(global_config.POSTGRES_URL.removeprefix("db+"))
    if database is not None:
        url = url.set(database=database)
    return sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


@pytest.fixture
def results_db() -> Iterator[sqlalchemy.Connection]:
    """결과 백엔드 데이터베이스(celery_jobs)에 직접 붙은 연결: Celery가 무엇을 남겼는지 본다."""
    engine = _engine()
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def empty_database() -> Iterator[str]:
    """테이블이 하나도 없는 새 데이터베이스를 만들고, 그 POSTGRES_URL 을 넘긴다. 끝나면 지운다."""
    name = f"celery_fresh_{uuid.uuid4().hex[:10]}"
    admin = _engine(database="postgres")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy.make_url(global_config.POSTGRES_URL.removeprefix("db+")).set(database=name)
    try:
        yield "db+" + url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def table_names():
    """POSTGRES_URL 이 가리키는 데이터베이스의 테이블 이름들."""

    def names(postgres_url: str) -> set[str]:
        engine = sqlalchemy.create_engine(postgres_url.removeprefix("db+"), poolclass=NullPool)
        try:
            return set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()

    return names
