"""실습을 모듈 이름으로 찾고, 그 실습이 필요로 하는 워커와 호출 스크립트를 다룬다."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from course import Needs, needs_of
from playground import PROJECT_ROOT
from playground.services import Service, service_for
from playground.workers import Beat, WebServer, Worker, running

LESSON_PATTERN = re.compile(r"practice\d\d")
CALL_TASKS_TIMEOUT_SECONDS = 180
CALL_STOP_SECONDS = 15  # SIGTERM을 받은 call_tasks 가 정리하고 끝나기를 기다리는 시간


# 테스트와 실행기의 워커는 풀 프로세스 둘로 띄운다(직접 띄우면 CPU 수만큼). 앱이 worker_concurrency 를 정해 둔
# 실습(practice05)은 그 값을 따른다: 그것도 그 실습이 가르치는 것이다.
DEFAULT_CONCURRENCY = 2


def available_lessons() -> list[str]:
    """저장소에 있는 실습(practiceNN/ 에 tasks.py 와 call_tasks.py 가 있는 것)을 순서대로."""
    return sorted(
        path.name
        for path in PROJECT_ROOT.iterdir()
        if LESSON_PATTERN.fullmatch(path.name) and (path / "tasks.py").is_file() and (path / "call_tasks.py").is_file()
    )


def lesson_app(lesson: str):
    return importlib.import_module(f"{lesson}.tasks").app


# 서비스가 꺼진 상황을 흉내 내는 주소: 아무것도 듣지 않는 포트 1.
CLOSED_PORT_URLS = {
    "RABBITMQ_URL": "amqp://localhost:1",
    "POSTGRES_URL": "db+postgresql+psycopg2://postgres:postgres@localhost:1/celery_jobs",
    "REDIS_URL": "redis://localhost:1",
}


def broker_service(lesson: str) -> Service:
    """그 실습 앱의 브로커가 어느 서비스인지 (RabbitMQ)."""
    return service_for(lesson_app(lesson).conf.broker_url)


def result_backend_service(lesson: str) -> Service:
    """그 실습 앱의 결과 백엔드가 어느 서비스인지 (PostgreSQL 또는 Redis)."""
    return service_for(lesson_app(lesson).conf.result_backend)


def service_down_env(service: Service) -> dict[str, str]:
    """service가 꺼져 있는 것처럼 보이게 하는 환경 변수."""
    return {service.env_var: CLOSED_PORT_URLS[service.env_var]}


def purge(lesson: str) -> int:
    """이 실습의 앱들이 쓰는 큐를 비우고 지운 메시지 수를 돌려준다.

    앱들은 NEEDS의 워커가 띄우는 앱이다. practice12는 Redis 브로커 앱도 있다.
    """
    modules = {spec.module for spec in needs_of(lesson).workers} | {"tasks"}
    return sum(importlib.import_module(f"{lesson}.{module}").app.control.purge() for module in sorted(modules))


@contextmanager
def worker_on_empty_queue(lesson: str, *, purge_first: bool = True, **options) -> Iterator[Worker]:
    """그 실습의 큐를 비운 뒤 워커 하나를 띄우고, 준비되면 넘겨준다. 블록이 끝나면 멈춘다.

    테스트와 벤치마크용이다. 실행기는 큐를 비우지 않는다: 워커가 없을 때 보낸 작업도
    나중에 뜬 워커가 처리해야 하기 때문이다.
    """
    if purge_first:
        purge(lesson)
    with running(Worker(lesson, **options)) as (worker,):
        yield worker


def _concurrency(lesson: str, module: str) -> int | None:
    """테스트와 실행기의 워커가 쓸 풀 크기: 앱이 worker_concurrency 를 정해 두었으면 None(앱을 따른다)."""
    try:
        app = importlib.import_module(f"{lesson}.{module}").app
    except ImportError:
        return DEFAULT_CONCURRENCY
    return None if "worker_concurrency" in app.conf.changes else DEFAULT_CONCURRENCY


def lesson_workers(lesson: str, on_line: Callable[[Worker, str], None] | None = None) -> list[Worker]:
    """그 실습의 lesson.py 가 NEEDS에 적은 워커들과, 적었다면 beat와 웹 서버 (아직 띄우지 않은 상태).

    노드 이름은 매번 새로 만든다. beat는 워커 뒤에 온다: 워커가 준비된 뒤에 보내기 시작하게. 웹 서버는 맨 뒤에 온다.
    """
    try:
        needs = needs_of(lesson)
    except ImportError:
        # 실습 모듈을 불러올 수 없으면 기본 워커 하나를 띄워, 워커가 그 이유를 자기 로그로 말하게 한다.
        needs = Needs()
    workers = []
    for spec in needs.workers:
        worker = Worker(
            lesson,
            module=spec.module,
            name=f"{spec.hostname or 'worker'}-{uuid.uuid4().hex[:6]}",
            queues=spec.queues,
            concurrency=_concurrency(lesson, spec.module),
            env=spec.env,
        )
        workers.append(worker)
    if needs.beat is not None:
        workers.append(Beat(lesson))
    if needs.web is not None:
        workers.append(WebServer(lesson, needs.web))
    if on_line is not None:
        for worker in workers:
            worker.on_line = lambda line, worker=worker: on_line(worker, line)
    return workers


# 지금 실행 중인 call_tasks 프로세스들. 실행기가 멈출 때 이것들도 멈춘다.
RUNNING_CALLS: set[subprocess.Popen[str]] = set()


def stop_running_calls() -> None:
    """실행 중인 call_tasks 에 SIGTERM을 보내고 끝나기를 기다린다. 시나리오는 자기가 띄운 프로세스를 스스로 정리한다."""
    for proc in list(RUNNING_CALLS):
        if proc.poll() is None:
            proc.terminate()
    for proc in list(RUNNING_CALLS):
        try:
            proc.wait(CALL_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class CallResult:
    returncode: int
    output: str
    seconds: float


def run_call_tasks(
    lesson: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = CALL_TASKS_TIMEOUT_SECONDS,
    on_line: Callable[[str], None] | None = None,
) -> CallResult:
    """`python -m <lesson>.call_tasks` 를 학습자가 하듯 하위 프로세스로 실행한다.

    출력은 줄마다 on_line 에 넘기고 모아서 돌려준다. timeout을 넘기면 프로세스를 죽이고 실패로 본다.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"{lesson}.call_tasks"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    timer = _Deadline(proc, timeout)
    RUNNING_CALLS.add(proc)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        returncode = proc.wait()
    finally:
        RUNNING_CALLS.discard(proc)
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if timer.fired:
        lines.append(f"[playground] call_tasks did not finish within {timeout:g} s and was killed\n")
        returncode = returncode or 1
    return CallResult(returncode, "".join(lines), time.monotonic() - started)


class _Deadline:
    """timeout 초가 지나도 프로세스가 살아 있으면 죽인다(출력을 읽는 반복문이 영원히 막히지 않게)."""

    def __init__(self, proc: subprocess.Popen[str], timeout: float) -> None:
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        if self._proc.poll() is None:
            self.fired = True
            self._proc.kill()

    def cancel(self) -> None:
        self._timer.cancel()
