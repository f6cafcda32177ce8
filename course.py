"""모든 실습의 call_tasks.py 가 함께 쓰는 작은 틀이다. Celery를 배우는 데 이 파일을 읽을 필요는 없다.

- WorkerSpec, BeatSpec, Needs는 실습을 실행하려면 무엇을 띄우고 얼마나 일부러 기다리는지를 tasks.py 에 적는 틀이다.
  README의 워커 명령, 워커가 없을 때의 안내, 실행기, 테스트, 벤치마크가 모두 이 한 곳을 읽는다.
- Scenario.step() 은 단계 제목을 찍는다.
- Scenario.expect() 는 배운 대로 나왔는지 확인한다. 다르면 표시해 두었다가 종료 코드 1로 알린다.
- Scenario.show() 는 호출 하나를 한 줄로 찍는다. 무엇을 불렀고 무엇이 돌아왔는지 찍고, 배운 값을 주면 그 값인지도
  확인한다. `show("add.delay(2, 3).get()", add.delay(2, 3).get(timeout=10), 5)` 는 `    add.delay(2, 3).get() → 5` 를
  찍는다.
- Scenario.raises() 안의 블록은 그 예외를 내야 한다(`with scenario.raises(TypeError) as refused:`). 잡은 예외와 걸린
  시간을 넘겨준다. 예외가 나지 않으면 expect() 처럼 예상과 다름으로 적는다.
- Scenario.run() 은 브로커와 결과 백엔드가 응답하는지 먼저 확인하고 시나리오를 실행한다. 워커나 서비스가 없으면
  traceback 대신 무엇을 켜야 하는지 말하고 종료 코드 1로 끝난다.

실행기(python -m playground)와 테스트도 같은 서비스 점검(unreachable_services)을 쓴다.
"""

import importlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from celery.exceptions import TimeoutError as CeleryTimeoutError
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerError
from kombu.utils.url import maybe_sanitize_url

import global_config

# 정상이라면 결과는 몇 초 안에 온다. 이만큼 기다려도 안 오면 워커가 없다고 본다.
RESULT_TIMEOUT = 10
CONNECT_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class WorkerSpec:
    """실습이 띄우라고 하는 `celery worker` 하나."""

    hostname: str | None = None  # 노드 이름의 앞부분: "worker-high" → --hostname=worker-high@%h
    queues: tuple[str, ...] = ()  # 소비할 큐(없으면 앱의 기본 큐)
    env: Mapping[str, str] = field(default_factory=dict)  # 명령 앞에 붙일 환경 변수
    module: str = "tasks"  # 앱이 있는 모듈. tasks.py 말고 실습 폴더 안의 다른 앱(다른 브로커)을 띄울 때 바꾼다

    def command(self, lesson: str) -> str:
        """README에 적는 그대로의 명령."""
        words = [f"{name}={value}" for name, value in self.env.items()]
        words += ["celery", "-A", f"{lesson}.{self.module}", "worker"]
        if self.queues:
            words.append(f"--queues={','.join(self.queues)}")
        if self.hostname:
            words.append(f"--hostname={self.hostname}@%h")
        words.append("--loglevel=info")
        return " ".join(words)


@dataclass(frozen=True)
class BeatSpec:
    """실습이 띄우라고 하는 `celery beat` 하나. 스케줄(beat_schedule)에 맞춰 작업 메시지를 보내기만 하는 프로세스다."""

    def command(self, lesson: str) -> str:
        """README에 적는 그대로의 명령. 스케줄 파일은 기본값(현재 폴더의 celerybeat-schedule)을 쓴다."""
        return f"celery -A {lesson}.tasks beat --loglevel=info"


@dataclass(frozen=True)
class Needs:
    """실습을 실행하는 데 필요한 것. 띄울 프로세스들과 일부러 기다리는 시간(무엇 → 초)을 적는다.

    waits는 call_tasks 가 결과를 기다리는 길 위에 놓인 sleep, countdown, 시간 제한, 재시도 간격, 끝까지 기다려
    보는 timeout이다. 나란히 실행되는 작업들은 가장 긴 것 하나만 적는다.
    """

    workers: tuple[WorkerSpec, ...] = (WorkerSpec(),)
    waits: Mapping[str, float] = field(default_factory=dict)
    beat: BeatSpec | None = None  # 주기 작업을 보내는 celery beat도 띄우는가

    @property
    def wait_seconds(self) -> float:
        return float(sum(self.waits.values()))

    def commands(self, lesson: str) -> list[str]:
        """띄울 프로세스의 명령들. 워커들이 먼저 오고 beat가 뒤에 온다."""
        processes = [*self.workers, *([self.beat] if self.beat else [])]
        return [process.command(lesson) for process in processes]


def needs_of(lesson: str) -> Needs:
    """그 실습의 tasks.py 가 적어 둔 Needs."""
    return importlib.import_module(f"{lesson}.tasks").NEEDS


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

    target = sqlalchemy.make_url(url.removeprefix("db+"))
    if database is not None:
        target = target.set(database=database)
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **options.pop("connect_args", {})}
    return sqlalchemy.create_engine(target, poolclass=NullPool, connect_args=connect_args, **options)


def postgres_database_name(url):
    import sqlalchemy

    return sqlalchemy.make_url(url.removeprefix("db+")).database


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

    import sqlalchemy

    target = sqlalchemy.make_url(url.removeprefix("db+"))
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


def _connection_errors():
    """서비스 연결이 끊겼을 때 나는 예외들. SQLAlchemy의 것은 이미 불러온 경우에만 (PostgreSQL 백엔드)."""
    errors = [BrokerError, redis.exceptions.ConnectionError]
    if "sqlalchemy.exc" in sys.modules:
        errors.append(sys.modules["sqlalchemy.exc"].OperationalError)
    return tuple(errors)


def service_for(url):
    """url이 가리키는 서비스 (주소의 앞부분으로 고른다)."""
    return next(service for service in SERVICES if url.startswith(service.scheme))


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


UNCHECKED = object()  # show() 에 배운 값을 주지 않았다는 표시. 이때는 찍기만 한다


@dataclass
class Raised:
    """Scenario.raises() 블록이 낸 예외와, 블록이 시작해서 끝나기까지 걸린 시간(초)."""

    exc: BaseException | None = None
    seconds: float = 0.0


class Scenario:
    def __init__(self, app, lesson=None):
        self.app = app
        self.lesson = lesson or app.main
        self.surprises = []

    def step(self, title):
        print(f"\n[{title}]")

    def expect(self, what, actual, expected):
        if actual != expected:
            self.surprises.append(what)
            print(f"    !! 예상과 다름: {what} = {actual!r} (예상: {expected!r})")

    def show(self, call, value, expected=UNCHECKED, note=""):
        """`    call → repr(value)   (note)` 를 찍고, expected가 있으면 그 값인지 확인한다. value를 돌려준다."""
        print(f"    {call} → {value!r}" + (f"   ({note})" if note else ""))
        if expected is not UNCHECKED:
            self.expect(call, value, expected)
        return value

    @contextmanager
    def raises(self, expected: type[BaseException]) -> Iterator[Raised]:
        raised = Raised()
        started = time.monotonic()
        try:
            yield raised
        except expected as exc:
            raised.exc = exc
        raised.seconds = time.monotonic() - started
        if raised.exc is None:
            self.expect(f"예외({expected.__name__})가 나야 하는 호출", "예외 없이 끝남", expected.__name__)

    def run(self, scenario):
        """scenario() 를 실행하고 종료 코드를 돌려준다. 모두 배운 대로면 0, 아니면 1이다."""
        # 실행기가 멈출 때 보내는 SIGTERM도 Ctrl-C 처럼 finally를 거쳐 끝나게 한다. 시나리오가 띄운 프로세스를 정리하게.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        for url in (self.app.conf.broker_url, self.app.conf.result_backend):
            problem = problem_with(service_for(url), url)
            if problem:
                print(f"\n{problem}")
                return 1
        try:
            return self._run(scenario)
        finally:
            self._release_pending_results()

    def _release_pending_results(self):
        # Redis 결과 백엔드는 결과를 기다리는 AsyncResult마다 구독을 걸고, 결과가 오기 전까지 그 객체를 붙잡아
        # 둔다. 워커가 없어 결과가 오지 않았으면 파이썬이 끝나는 도중에 구독을 풀려다 경고 traceback을 찍는다.
        # 그래서 끝나기 전에 직접 푼다. 공개 API가 없어 내부 목록을 읽는다.
        backend = self.app.backend
        for mapping in getattr(backend, "_pending_results", ()):
            for waiters in list(mapping.values()):
                for result in list(waiters.values()):
                    backend.remove_pending_result(result)

    def _run(self, scenario):
        try:
            scenario()
        except CeleryTimeoutError:
            print(f"\n기다리던 결과가 오지 않았습니다(최대 {RESULT_TIMEOUT}초). {self.lesson} 워커가 실행 중인가요?")
            print("다른 터미널에서 띄우세요:")
            # tasks.py 는 여기서야 읽는다. practice06의 call_tasks 는 작업 코드를 import 하지 않고 부르는 법을
            # 보이기 때문이다.
            for command in needs_of(self.lesson).commands(self.lesson):
                print(f"    {command}")
            print("(이미 보낸 작업은 큐에 남아 있다가 워커가 뜨면 실행됩니다.)")
            return 1
        except Exception as exc:
            if not isinstance(exc, _connection_errors()):
                raise
            # 시작할 때는 응답했지만 도중에 끊겼다.
            print(f"\n도중에 서비스 연결이 끊겼습니다: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            print("docker compose ps로 서비스 상태를 확인하세요.")
            return 1
        if self.surprises:
            print(f"\n예상과 다른 결과 {len(self.surprises)}개: {', '.join(self.surprises)}")
            return 1
        print("\n모든 호출이 README에 적힌 대로 동작했습니다.")
        return 0
