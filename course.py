"""모든 실습의 tasks.py 와 call_tasks.py 가 함께 쓰는 작은 틀이다. Celery를 배우는 데 이 파일을 읽을 필요는 없다.

작업이 한 일을 적고 읽기, 기다리기:
- Journal(실행 기록): 작업이 한 일을 실행(run)마다 Redis 목록 하나에 적는다. 작업 안에서는 한 줄로 적는다
  (`journal.write(run, "시작")`). 호출하는 쪽은 `journal.read(run)` 으로 적힌 순서대로 읽는다.
- wait_until(predicate, what): predicate() 가 참인 값을 낼 때까지 기다린다. WAIT_SECONDS 안에 참이 되지 않으면
  get() 처럼 celery.exceptions.TimeoutError 를 낸다. 그러면 Scenario.run() 이 워커를 띄우라고 안내한다.
- never_within(seconds, predicate, what): seconds 초 동안 predicate() 가 한 번도 참이 되지 않는지 지켜본다.
  참이 되면 Happened를 낸다. Scenario.run() 은 그것을 "예상과 다름"으로 알린다.
  두 함수는 Celery의 celery/contrib/testing/manager.py 에 있는 wait_for, ensure_not_for_a_while 을 본떴다.

실습을 보여 주기:
- Scenario.step() 은 단계 제목을 찍는다.
- Scenario.expect() 는 배운 대로 나왔는지 확인한다. 다르면 표시해 두었다가 종료 코드 1로 알린다.
- Scenario.show() 는 호출 하나를 한 줄로 찍는다. 무엇을 불렀고 무엇이 돌아왔는지 찍고, 배운 값을 주면 그 값인지도
  확인한다. `show("add.delay(2, 3).get()", add.delay(2, 3).get(timeout=10), 5)` 는 `    add.delay(2, 3).get() → 5` 를
  찍는다.
- Scenario.raises() 안의 블록은 그 예외를 내야 한다(`with scenario.raises(TypeError) as refused:`). raises() 는 잡은
  예외와 걸린 시간을 넘겨준다(refused.exc, refused.seconds). 예외가 나지 않으면 expect() 처럼 "예상과 다름"으로
  적는다.
- Scenario.run() 은 브로커와 결과 백엔드가 응답하는지 먼저 확인하고 시나리오를 실행한다. 워커나 서비스가 없으면
  traceback 대신 무엇을 켜야 하는지 말하고 종료 코드 1로 끝난다.

실습을 실행하는 데 필요한 것:
- 워커를 멈추는 것이 주제인 실습의 call_tasks 는 워커를 직접 띄운다. Worker(lesson, name=...) 가 워커 프로세스
  하나이고(worker.proc.pid 에 신호를 보낸다), running(...) 은 블록 안에서만 워커들을 띄워 둔다.
- WorkerSpec, BeatSpec, Needs는 실습을 실행할 때 띄울 프로세스와 일부러 기다리는 시간을 적는 틀이다. 실습마다
  lesson.py 에 NEEDS 하나를 적는다. 워커가 없을 때의 안내, 실행기, 테스트, 벤치마크가 모두 이 한 곳을 읽는다.
  README의 워커 명령도 이것과 같아야 한다(`python -m playground check` 가 확인한다).

서비스 목록과 점검은 playground/services.py 에 있다. 실행기와 테스트도 그것을 쓴다.
"""

import importlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from celery.exceptions import TimeoutError as CeleryTimeoutError

import global_config
from playground import exit_on_sigterm
from playground.services import connection_errors, problem_with, service_for
from playground.workers import Worker, running  # noqa: F401 (워커를 직접 띄우는 실습의 call_tasks 가 쓴다)

# call_tasks 가 결과를 기다리는 상한(get(timeout=…), wait_until). 정상이라면 결과는 몇 초 안에 온다. 이만큼 기다려도
# 오지 않으면 워커가 없다고 본다. 환경 변수 PLAYGROUND_WAIT_SECONDS 로 바꿀 수 있다. 느린 기계에서는 늘리고
# (PLAYGROUND_WAIT_SECONDS=30 python -m practice00.call_tasks), 워커가 없을 때의 안내를 빨리 보려면 줄인다.
WAIT_SECONDS = float(os.environ.get("PLAYGROUND_WAIT_SECONDS", "10"))
# wait_until, never_within 이 predicate() 를 다시 부르는 간격.
POLL_SECONDS = 0.05


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
class WebSpec:
    """실습이 띄우라고 하는 웹 서버(`uvicorn`) 하나. 작업을 보내는 웹 앱이다.

    학습자는 기본 포트(port)로 띄운다. 실습의 call_tasks 는 `<실습>_URL` 환경 변수(PRACTICE16_URL 등)가 있으면 그
    주소로, 없으면 기본 포트로 요청을 보낸다. 테스트는 테스트 프로세스마다 다른 주소를 그 변수에 넣는다.
    """

    app: str  # uvicorn이 불러올 ASGI 앱: "practice16.web:app"
    port: int

    def command(self, lesson: str) -> str:
        """README에 적는 그대로의 명령. 주소는 uvicorn의 기본값(127.0.0.1)이다."""
        return f"uvicorn {self.app} --port {self.port}"

    def url(self, lesson: str) -> str:
        """call_tasks 가 요청을 보낼 주소. `<실습>_URL` 환경 변수가 있으면 그 값이다."""
        return os.environ.get(web_url_variable(lesson), f"http://127.0.0.1:{self.port}")


def web_url_variable(lesson: str) -> str:
    """실습의 웹 서버 주소를 바꾸는 환경 변수의 이름: practice16 → PRACTICE16_URL."""
    return f"{lesson.upper()}_URL"


@dataclass(frozen=True)
class Needs:
    """실습을 실행하는 데 필요한 것. 띄울 프로세스들과 일부러 기다리는 시간(무엇 → 초)을 적는다.

    waits는 call_tasks 가 결과를 기다리는 길 위에 놓인 sleep, countdown, 시간 제한, 재시도 간격, 끝까지 기다려
    보는 timeout이다. 나란히 실행되는 작업들은 가장 긴 것 하나만 적는다.
    """

    workers: tuple[WorkerSpec, ...] = (WorkerSpec(),)
    waits: Mapping[str, float] = field(default_factory=dict)
    beat: BeatSpec | None = None  # 주기 작업을 보내는 celery beat도 띄우는가
    web: WebSpec | None = None  # 작업을 보내는 웹 서버도 띄우는가
    # call_tasks 가 워커를 직접 띄우고 신호를 보내 멈추는가. 워커를 멈추는 것이 주제인 실습(배포, 멈춘 워커)이
    # 그렇다. 그런 실습은 workers를 비워 둔다(workers=()). 실행기는 워커를 띄우지 않고 call_tasks 만 실행한다.
    starts_workers: bool = False

    @property
    def wait_seconds(self) -> float:
        return float(sum(self.waits.values()))

    def commands(self, lesson: str) -> list[str]:
        """띄울 프로세스의 명령들. 워커들이 먼저 오고 beat와 웹 서버가 뒤에 온다."""
        processes = [*self.workers, *([self.beat] if self.beat else []), *([self.web] if self.web else [])]
        return [process.command(lesson) for process in processes]


def needs_of(lesson: str) -> Needs:
    """그 실습의 lesson.py 가 적어 둔 Needs."""
    return importlib.import_module(f"{lesson}.lesson").NEEDS


class NotInTime(CeleryTimeoutError):
    """wait_until 이 기다린 일이 제때 일어나지 않았다.

    get(timeout=…) 이 내는 celery.exceptions.TimeoutError 의 한 종류다.
    """


def wait_until[T](predicate: Callable[[], T], what: str, timeout: float = WAIT_SECONDS) -> T:
    """predicate() 가 참인 값을 낼 때까지 기다리고 그 값을 돌려준다. 최대 timeout 초 기다린다.

    제때 참이 되지 않으면 결과를 기다리는 get() 처럼 TimeoutError를 낸다(celery.exceptions.TimeoutError 의 한
    종류인 NotInTime). 메시지는 "…초를 기다렸지만 오지 않았습니다: " 뒤에 what을 붙인 것이다.
    시간은 time.monotonic 으로만 잰다.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise NotInTime(f"{timeout:g}초를 기다렸지만 오지 않았습니다: {what}")
        time.sleep(POLL_SECONDS)


class Happened(AssertionError):
    """일어나지 않아야 할 일이 never_within 이 지켜보는 동안 일어났다."""


def never_within(seconds: float, predicate: Callable[[], object], what: str) -> None:
    """seconds 초 동안 predicate() 가 한 번도 참이 되지 않는지 지켜본다. 참이 되는 순간 Happened를 낸다.

    "일어나지 않는다"는 주장은 이렇게 잠깐 지켜보는 것으로만 확인할 수 있다. seconds는 그 일이 일어날 수
    있다면 일어나고도 남을 만큼 넉넉히 잡는다.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            raise Happened(f"일어나지 않아야 할 일이 일어났습니다: {what} ({value!r})")
        if time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Entry:
    """실행 기록 한 줄. 무엇이 일어났는지(what), 적은 시각(at, time.time()), 적은 프로세스의 pid, 작업이 함께 넘긴
    값들(fields)을 담는다. entry["이름"] 은 fields에서 읽는다.
    """

    what: str
    at: float
    pid: int
    fields: Mapping[str, object] = field(default_factory=dict)

    def __getitem__(self, name: str) -> object:
        return self.fields[name]


class Journal:
    """실행 기록. 작업이 한 일을 실행(run)마다 Redis 목록 하나에 적고, 호출하는 쪽은 적힌 순서대로 읽는다.

    키는 `<실습>:journal:<run>` 이고, 마지막 줄을 적고 TTL_SECONDS 초가 지나면 사라진다. 한 줄은 JSON 하나다
    (`{"what": "시작", "at": 1764567600.12, "pid": 4242, ...}`). redis-cli나 RedisInsight에서도 그대로 읽을 수
    있다(`LRANGE practice01:journal:<run> 0 -1`).
    """

    TTL_SECONDS = 3600

    def __init__(self, lesson: str) -> None:
        self.lesson = lesson
        self._redis: redis.Redis | None = None

    @property
    def redis(self) -> redis.Redis:
        # 처음 쓸 때 연결한다. 주소는 그때의 global_config.REDIS_URL 이다.
        if self._redis is None:
            self._redis = redis.Redis.from_url(global_config.REDIS_URL, decode_responses=True)
        return self._redis

    @staticmethod
    def new_run() -> str:
        """새 실행 이름. 작업에 인자로 넘기고, 그 작업이 남긴 기록을 이 이름으로 찾는다."""
        return str(uuid.uuid4())

    def key(self, run: str) -> str:
        return f"{self.lesson}:journal:{run}"

    def write(self, run: str, what: str, **fields: object) -> int:
        """run의 기록에 한 줄을 더하고, 이 줄까지 적힌 줄 수를 돌려준다(몇 번째 실행인지 세는 데 쓴다)."""
        line = json.dumps({"what": what, "at": time.time(), "pid": os.getpid(), **fields}, ensure_ascii=False)
        key = self.key(run)
        count = self.redis.rpush(key, line)
        self.redis.expire(key, self.TTL_SECONDS)
        return count

    def read(self, run: str) -> list[Entry]:
        """run의 기록을 적힌 순서대로 돌려준다."""
        entries = []
        for line in self.redis.lrange(self.key(run), 0, -1):
            fields = json.loads(line)
            entries.append(Entry(fields.pop("what"), fields.pop("at"), fields.pop("pid"), fields))
        return entries

    def whats(self, run: str) -> list[str]:
        """run의 기록에 적힌 what들을 적힌 순서대로 돌려준다."""
        return [entry.what for entry in self.read(run)]

    def wait_for(self, run: str, count: int, what: str | None = None, timeout: float = WAIT_SECONDS) -> list[Entry]:
        """run의 기록이 count 줄 이상이 될 때까지 기다리고, 그때의 기록 전체를 돌려준다.

        what을 주면 그 what인 줄만 센다. timeout 초 안에 모이지 않으면 wait_until 처럼 NotInTime을 낸다.
        """

        def enough():
            entries = self.read(run)
            counted = [entry for entry in entries if what is None or entry.what == what]
            return entries if len(counted) >= count else None

        counted = f"what이 {what!r}인 " if what else ""
        return wait_until(enough, f"{counted}실행 기록 {count}줄 (키 {self.key(run)})", timeout)


def release_pending_results(app):
    """app이 결과를 기다리다 만 AsyncResult들의 구독을 지금 푼다.

    Redis 결과 백엔드는 결과를 기다리는 AsyncResult마다 구독을 걸고, 결과가 오기 전까지 그 객체를 붙잡아 둔다.
    워커가 없어 결과가 오지 않았으면 파이썬이 끝나는 도중에 구독을 풀려다 경고 traceback을 찍는다. 그래서 끝나기
    전에 직접 푼다. 공개 API가 없어 백엔드의 내부 목록을 읽는다.
    """
    backend = app.backend
    for mapping in getattr(backend, "_pending_results", ()):
        for waiters in list(mapping.values()):
            for result in list(waiters.values()):
                backend.remove_pending_result(result)


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
        # 실행기가 멈출 때 보내는 SIGTERM도 Ctrl-C 처럼 finally를 거쳐 끝나게 한다.
        # 그래야 시나리오가 띄운 프로세스가 정리된다.
        exit_on_sigterm()
        for url in (self.app.conf.broker_url, self.app.conf.result_backend):
            problem = problem_with(service_for(url), url)
            if problem:
                print(f"\n{problem}")
                return 1
        try:
            return self._run(scenario)
        finally:
            release_pending_results(self.app)

    def _run(self, scenario):
        try:
            scenario()
        except CeleryTimeoutError as exc:
            waited = f"기다리던 결과가 오지 않았습니다(최대 {WAIT_SECONDS:g}초)"
            if isinstance(exc, NotInTime):
                waited = str(exc)
            # lesson.py 는 여기서야 읽는다. practice06의 lesson.py 는 tasks.py 를 import 하지 않는다. 그 실습의
            # call_tasks 는 작업 코드를 import 하지 않고 부르는 법을 보이기 때문이다.
            needs = needs_of(self.lesson)
            if needs.starts_workers:
                # 워커는 이 시나리오가 띄웠다. 띄울 워커를 안내할 것이 없다. 느린 기계라면 기다리는 상한을 늘린다.
                print(f"\n{waited}. 이 실습은 워커를 직접 띄웁니다.")
                print("기계가 느리면 PLAYGROUND_WAIT_SECONDS=30 처럼 기다리는 상한을 늘려 다시 실행하세요.")
                return 1
            # 웹 서버도 띄우는 실습(practice16)의 call_tasks 는 웹 서버를 거쳐 작업을 보낸다. 둘 다 있어야 한다.
            running = "워커와 웹 서버가" if needs.web else "워커가"
            print(f"\n{waited}. {self.lesson} {running} 실행 중인가요?")
            print("다른 터미널에서 띄우세요:")
            for command in needs.commands(self.lesson):
                print(f"    {command}")
            print("(이미 보낸 작업은 큐에 남아 있다가 워커가 뜨면 실행됩니다.)")
            return 1
        except Happened as exc:
            self.surprises.append(str(exc))
            print(f"    !! 예상과 다름: {exc}")
            print(f"\n예상과 다른 결과 {len(self.surprises)}개: {', '.join(self.surprises)}")
            return 1
        except Exception as exc:
            if not isinstance(exc, connection_errors()):
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
