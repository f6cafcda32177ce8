"""세 서비스(RabbitMQ, PostgreSQL, Redis)의 목록, 응답하는지 보는 점검, 꺼진 서비스를 켜는 일.

- SERVICES: 서비스마다 이름, global_config 의 변수, URL의 앞부분, docker compose 서비스 이름, 점검 함수를 적은
  목록이다. call_tasks(course.Scenario.run), 실행기, 테스트 세션, 버전 확인이 모두 이 목록 하나를 쓴다.
- problem_with(), unreachable_services(): 응답하지 않는 서비스를 사람이 읽을 설명으로 바꾼다.
- ensure_services(): 실행기(`python -m playground`)와 테스트 세션이 시작할 때 쓴다. 기본 주소(localhost)의 서비스가
  꺼져 있으면 docker compose로 띄운다. 환경 변수로 주소를 바꾼 서비스는 학습자가 따로 띄운 것이므로 건드리지
  않는다. Docker나 compose가 없으면 아무것도 띄우지 않고, 무엇을 켜야 하는지만 말한다.

PostgreSQL 서버는 응답하는데 URL의 데이터베이스만 없으면 그 데이터베이스를 만들고 한 줄로 알린다. Docker 없이
기계에 설치한 서버가 흔히 그렇다. 만들 수 없으면 그 URL에 맞는 createdb 명령을 권한다. CREATEDB 권한이 없는 역할이
그런 예다.
URL에 적힌 데이터베이스 말고는 아무것도 만들지 않고, 아무것도 지우지 않는다.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerError
from kombu.utils.url import maybe_sanitize_url

import global_config
from playground import PROJECT_ROOT

CONNECT_TIMEOUT_SECONDS = 3

COMPOSE_PROBE_SECONDS = 15
# 이미지를 처음 내려받는 데 걸리는 시간까지 넉넉히. 그래도 끝나지 않으면 멈춘 것으로 본다.
COMPOSE_UP_SECONDS = 600
# `CREATE DATABASE` 의 상한. template1을 복사할 뿐이라 보통 1초도 걸리지 않는다.
CREATE_DATABASE_TIMEOUT_MS = 30_000
# 42501 insufficient_privilege. CREATEDB 권한이 없는 역할이 `CREATE DATABASE` 를 보내면 받는 SQLSTATE다.
INSUFFICIENT_PRIVILEGE = "42501"


def sqlalchemy_url(url):
    """Celery의 PostgreSQL 결과 백엔드 주소(`db+postgresql+psycopg2://…`)를 SQLAlchemy의 URL로 바꾼다.

    앞의 `db+` 는 Celery에게 SQLAlchemy 백엔드를 쓰라고 알리는 표시일 뿐이다. `db+` 가 없는 주소도 그대로 받는다.
    """
    import sqlalchemy

    return sqlalchemy.make_url(url.removeprefix("db+"))


def _probe_rabbitmq(url):
    with Connection(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)


class MissingDatabase(Exception):
    """PostgreSQL 서버는 응답하지만 URL에 적힌 데이터베이스가 그 서버에 없다."""

    def __init__(self, url, database, reason):
        super().__init__(reason)
        self.url = url
        self.database = database


# 서버에 데이터베이스가 있는지 물을 때 붙는 관리용 데이터베이스. createdb처럼 postgres를 먼저, 없으면 template1을 쓴다.
MAINTENANCE_DATABASES = ("postgres", "template1")


def postgres_engine(url, database=None, **options):
    """`url` 이 가리키는 서버에 붙는 엔진(앞의 `db+` 는 있어도 된다). `database` 를 주면 그 데이터베이스에 붙는다.

    연결에는 언제나 제한 시간(CONNECT_TIMEOUT_SECONDS)이 있다.
    """
    # SQLAlchemy는 PostgreSQL을 쓸 때만 불러온다. 불러오는 데만 0.3초 넘게 걸린다.
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    target = sqlalchemy_url(url)
    if database is not None:
        target = target.set(database=database)
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **options.pop("connect_args", {})}
    return sqlalchemy.create_engine(target, poolclass=NullPool, connect_args=connect_args, **options)


def postgres_database_name(url):

    return sqlalchemy_url(url).database


def database_exists(url):
    """`url` 의 데이터베이스가 서버에 있으면 True, 없으면 False, 서버에 물을 수 없으면 None을 돌려준다.

    그 데이터베이스에는 붙지 않고 관리용 데이터베이스에 붙어 pg_database 를 읽는다(누구나 읽을 수 있다).
    """
    import sqlalchemy

    name = postgres_database_name(url)
    for maintenance in MAINTENANCE_DATABASES:
        engine = postgres_engine(url, database=maintenance)
        try:
            with engine.connect() as conn:
                found = conn.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
                return found.first() is not None
        except sqlalchemy.exc.SQLAlchemyError:
            continue  # 그 관리용 데이터베이스가 없거나 붙을 수 없으면 다음 것을 쓴다
        finally:
            engine.dispose()
    return None


def database_is_missing(url, message):
    """연결이 `message` 로 실패한 까닭이 "서버는 응답하지만 `url` 의 데이터베이스가 없다"인가.

    서버가 영어로 답하면 `message` 만 보고 안다. 서버의 `lc_messages` 가 다른 언어면 메시지가 번역되어 오므로
    관리용 데이터베이스에 붙어 pg_database 에 물어본다.
    """
    name = postgres_database_name(url)
    if name is None:  # URL에 데이터베이스가 없으면 libpq는 사용자 이름을 쓴다. 여기서 만들 데이터베이스가 아니다.
        return False
    if f'database "{name}" does not exist' in message:
        return True
    return database_exists(url) is False


def _probe_postgres(url):
    import sqlalchemy

    engine = postgres_engine(url)
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as exc:
        message = str(exc.orig)
        # 제한 시간까지 기다린 실패는 서버가 응답하지 않은 것이다. 한 번 더 붙어 보며 또 기다리지 않는다.
        answered = time.monotonic() - started < CONNECT_TIMEOUT_SECONDS
        if answered and database_is_missing(url, message):
            raise MissingDatabase(url, postgres_database_name(url), message.strip()) from exc
        raise
    finally:
        engine.dispose()


def _probe_redis(url):
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


@dataclass(frozen=True)
class Service:
    name: str
    env_var: str  # global_config 의 변수 이름이자 그 값을 바꾸는 환경 변수 이름
    scheme: str  # 이 서비스를 가리키는 URL의 앞부분
    compose_service: str
    probe: Callable[[str], None]  # 연결에 실패하면 예외를 던진다

    @property
    def url(self):
        return getattr(global_config, self.env_var)


SERVICES = (
    Service("RabbitMQ", "RABBITMQ_URL", "amqp", "rabbitmq", _probe_rabbitmq),
    Service("PostgreSQL", "POSTGRES_URL", "db+postgresql", "postgres", _probe_postgres),
    Service("Redis", "REDIS_URL", "redis", "redis", _probe_redis),
)


def createdb_command(url):
    """`url` 의 데이터베이스를 만드는 createdb 명령. 호스트, 포트, 사용자는 `url` 그대로 쓰고 비밀번호는 적지 않는다."""
    import shlex

    target = sqlalchemy_url(url)
    words = ["createdb"]
    if target.host:
        words.append(f"--host={target.host}")
    if target.port:
        words.append(f"--port={target.port}")
    if target.username:
        words.append(f"--username={target.username}")
    words.append(target.database)
    return " ".join(shlex.quote(word) for word in words)


def describe_missing_database(exc):
    """서버는 응답하지만 데이터베이스가 없다(MissingDatabase). `docker compose` 가 아니라 createdb를 권한다."""
    reason = exc.args[0].splitlines()[0] if exc.args and exc.args[0] else "MissingDatabase"
    return (
        f"PostgreSQL 서버는 응답하지만 데이터베이스가 없습니다: {exc.database}\n"
        f"  주소: {maybe_sanitize_url(exc.url)}\n"
        f"  원인: {reason}\n"
        f"  만들기: {createdb_command(exc.url)}"
    )


def describe_unreachable(service, url, exc):
    """연결하지 못한 서비스를 이름, 주소, 원인, 켜는 방법과 함께 설명한다."""
    if isinstance(exc, MissingDatabase):
        return describe_missing_database(exc)
    reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return (
        f"{service.name}에 연결할 수 없습니다: {maybe_sanitize_url(url)}\n"
        f"  원인: {type(exc).__name__}: {reason}\n"
        f"  켜기: docker compose up -d {service.compose_service}"
        f"  (다른 주소는 환경 변수로 정하세요: {service.env_var})"
    )


def probe_failure(service, url):
    """service가 url에서 응답하면 None, 아니면 그 예외(데이터베이스만 없으면 MissingDatabase)."""
    try:
        service.probe(url)
    except Exception as exc:  # 어떤 실패든 돌려주어 사람이 읽을 말로 바꾸게 한다
        return exc
    return None


def problem_with(service, url):
    """service가 url에서 응답하면 None, 아니면 사람이 읽을 설명."""
    exc = probe_failure(service, url)
    return None if exc is None else describe_unreachable(service, url, exc)


def unreachable_services():
    """global_config 의 세 서비스 중 응답하지 않는 것마다 설명 한 덩어리. 모두 응답하면 빈 목록."""
    return [problem for service in SERVICES if (problem := problem_with(service, service.url))]


def connection_errors():
    """서비스 연결이 끊겼을 때 나는 예외들. SQLAlchemy의 것은 이미 불러온 경우에만 (PostgreSQL 백엔드)."""
    errors = [BrokerError, redis.exceptions.ConnectionError]
    if "sqlalchemy.exc" in sys.modules:
        errors.append(sys.modules["sqlalchemy.exc"].OperationalError)
    return tuple(errors)


def service_for(url):
    """url이 가리키는 서비스 (주소의 앞부분으로 고른다)."""
    return next(service for service in SERVICES if url.startswith(service.scheme))


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

    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy가 감싼 psycopg2 예외가 원인을 짧게 말한다
    reason = (str(cause).strip() or type(cause).__name__).splitlines()[0]
    lines = f"\n  만들지 못한 까닭: {type(cause).__name__}: {reason}"
    owner = sqlalchemy_url(missing.url).username
    if getattr(cause, "pgcode", None) == INSUFFICIENT_PRIVILEGE and owner:
        lines += f"\n  CREATEDB 권한이 있는 역할로 만든다면 소유자를 이 역할로 정하세요: --owner={owner}"
    return lines
