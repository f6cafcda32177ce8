"""세 서비스가 응답하는지 보고, 기본 주소(localhost)의 서비스가 꺼져 있으면 docker compose로 띄운다.

실행기(`python -m playground`)와 테스트 세션이 시작할 때 쓴다. 환경 변수로 주소를 바꾼 서비스는 학습자가 따로
띄운 것이므로 건드리지 않는다. Docker나 compose가 없으면 아무것도 띄우지 않고, 무엇을 켜야 하는지만 말한다.

PostgreSQL 서버는 응답하는데 URL의 데이터베이스만 없으면 그 데이터베이스를 만들고 한 줄로 알린다. Docker 없이
기계에 설치한 서버가 흔히 그렇다. 만들 수 없으면 그 URL에 맞는 createdb 명령을 권한다. CREATEDB 권한이 없는 역할이
그런 예다.
URL에 적힌 데이터베이스 말고는 아무것도 만들거나 지우지 않는다.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from course import (
    SERVICES,
    MissingDatabase,
    Service,
    database_exists,
    describe_missing_database,
    describe_unreachable,
    postgres_database_name,
    postgres_engine,
    probe_failure,
)
from playground import PROJECT_ROOT

COMPOSE_PROBE_SECONDS = 15
# 이미지를 처음 내려받는 데 걸리는 시간까지 넉넉히. 그래도 끝나지 않으면 멈춘 것으로 본다.
COMPOSE_UP_SECONDS = 600
# `CREATE DATABASE` 의 상한. template1을 복사할 뿐이라 보통 1초도 걸리지 않는다.
CREATE_DATABASE_TIMEOUT_MS = 30_000
# 42501 insufficient_privilege. CREATEDB 권한이 없는 역할이 `CREATE DATABASE` 를 보내면 받는 SQLSTATE다.
INSUFFICIENT_PRIVILEGE = "42501"


def down_at_default_address() -> list[Service]:
    """환경 변수로 주소를 바꾸지 않았는데(기본값 = docker-compose 가 여는 localhost 포트) 응답하지 않는 서비스."""
    return [service for service in SERVICES if service.env_var not in os.environ and _server_down(service)]


def _server_down(service: Service) -> bool:
    # 데이터베이스만 없는 PostgreSQL은 서버가 떠 있다. compose로 또 띄우면 두 서버가 같은 포트를 두고 다툰다.
    failure = probe_failure(service, service.url)
    return failure is not None and not isinstance(failure, MissingDatabase)


def compose_available() -> bool:
    """`docker compose` 를 쓸 수 있는가(Docker 클라이언트와 compose 플러그인)."""
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=COMPOSE_PROBE_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def compose_up_command(services: list[Service]) -> list[str]:
    return ["docker", "compose", "up", "-d", "--wait", *(service.compose_service for service in services)]


def ensure_services(say: Callable[[str], None] = print) -> list[str]:
    """꺼진 서비스를 (할 수 있으면) 띄운 뒤, 여전히 응답하지 않는 서비스마다 설명 한 덩어리를 돌려준다."""
    startable = down_at_default_address()
    if startable and compose_available():
        command = compose_up_command(startable)
        say(f"꺼져 있는 서비스를 docker compose로 띄웁니다: {' '.join(command)}")
        try:
            started = subprocess.run(command, cwd=PROJECT_ROOT, timeout=COMPOSE_UP_SECONDS, check=False)
            if started.returncode != 0:
                say(f"docker compose가 0이 아닌 종료 코드로 끝났습니다: {started.returncode}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"docker compose를 끝까지 실행하지 못했습니다: {exc}")
    return [problem for service in SERVICES if (problem := _problem_after_setup(service, say))]


def _problem_after_setup(service: Service, say: Callable[[str], None]) -> str | None:
    failure = probe_failure(service, service.url)
    if isinstance(failure, MissingDatabase):
        refused = create_missing_database(failure, say)
        if refused is not None:
            return refused
        failure = probe_failure(service, service.url)  # 만든 데이터베이스에 이제 붙는가
    return None if failure is None else describe_unreachable(service, service.url, failure)


def create_database(url: str) -> None:
    """`url` 의 서버에 `url` 의 데이터베이스를 만든다. 관리용 데이터베이스 postgres에 붙어서 만든다.

    template1에 붙어서는 만들지 않는다. `CREATE DATABASE` 는 template1을 복사하는데, 그곳에 붙은 세션이 있으면
    거절하기 때문이다.
    """
    import sqlalchemy

    engine = postgres_engine(
        url, database="postgres", isolation_level="AUTOCOMMIT",
        connect_args={"options": f"-c statement_timeout={CREATE_DATABASE_TIMEOUT_MS}"},
    )  # fmt: skip
    try:
        name = engine.dialect.identifier_preparer.quote_identifier(postgres_database_name(url))
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()


def create_missing_database(missing: MissingDatabase, say: Callable[[str], None]) -> str | None:
    """없는 데이터베이스를 만든다. 만들었으면 한 줄로 알리고 None, 만들지 못했으면 createdb를 권하는 설명을 돌려준다."""
    try:
        create_database(missing.url)
    except Exception as exc:  # 권한이 없든 다른 까닭이든, 직접 만드는 명령을 알려 준다
        if database_exists(missing.url):
            return None  # 그사이 다른 프로세스가 만들었다
        return describe_missing_database(missing) + _refusal(missing, exc)
    say(f"PostgreSQL에 데이터베이스가 없어서 만들었습니다: {missing.database}")
    return None


def _refusal(missing: MissingDatabase, exc: Exception) -> str:
    import sqlalchemy

    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy가 감싼 psycopg2 예외가 원인을 짧게 말한다
    reason = (str(cause).strip() or type(cause).__name__).splitlines()[0]
    lines = f"\n  만들지 못한 까닭: {type(cause).__name__}: {reason}"
    owner = sqlalchemy.make_url(missing.url.removeprefix("db+")).username
    if getattr(cause, "pgcode", None) == INSUFFICIENT_PRIVILEGE and owner:
        lines += f"\n  CREATEDB 권한이 있는 역할로 만든다면 소유자를 이 역할로 정하세요: --owner={owner}"
    return lines
