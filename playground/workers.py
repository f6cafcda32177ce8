"""실제 `celery worker` 하위 프로세스를 띄우고, 준비될 때까지 기다리고, PID로 멈춘다."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress

from playground import PROJECT_ROOT, processes

READY_TIMEOUT_SECONDS = 30
PING_TIMEOUT_SECONDS = 1.0
# SIGTERM(warm shutdown)은 실행 중인 작업이 끝나기를 기다린다. 그 시간에 상한을 둔다.
WARM_SHUTDOWN_SECONDS = 10
COLD_SHUTDOWN_SECONDS = 5
LOG_TAIL_LINES = 25


class WorkerError(RuntimeError):
    """워커가 뜨지 못했거나 기다린 일이 제시간에 일어나지 않았다."""


class Worker:
    """`python -m celery -A <lesson>.<module> worker` 프로세스 하나 (module은 보통 tasks).

    출력(stdout과 stderr)은 스레드가 계속 읽어 `log` 에 모으고, `on_line` 이 있으면 줄마다 넘긴다.
    노드 이름은 매번 새로 만들어 같은 기계의 다른 워커와 겹치지 않는다.
    """

    def __init__(
        self,
        lesson: str,
        *,
        name: str | None = None,
        queues: Sequence[str] = (),
        pool: str = "prefork",
        concurrency: int | None = 2,  # None: 앱 설정(worker_concurrency)을 따른다
        fast_start: bool = True,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
        module: str = "tasks",
    ) -> None:
        self.lesson = lesson
        self.module = module
        self.name = name or f"{lesson}-{uuid.uuid4().hex[:8]}"
        self.queues = tuple(queues)
        self.pool = pool
        self.concurrency = concurrency
        self.fast_start = fast_start
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.on_line = on_line
        self.node: str | None = None  # "이름@호스트", 준비된 뒤에 채워진다
        self.proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None
        self._stop_lock = threading.Lock()
        self._exit_code: int | None = None  # stop() 이 끝나면 채워진다. 그 뒤에는 PID를 다시 쓰지 않는다.

    @property
    def argv(self) -> list[str]:
        argv = [
            sys.executable, "-m", "celery", "-A", f"{self.lesson}.{self.module}", "worker",
            "--loglevel=INFO", f"--pool={self.pool}", f"--hostname={self.name}@%h",
        ]  # fmt: skip
        if self.concurrency is not None:
            argv.append(f"--concurrency={self.concurrency}")
        if self.queues:
            argv.append(f"--queues={','.join(self.queues)}")
        if self.fast_start:
            # mingle(다른 워커와 상태 맞추기)과 gossip은 혼자 실행되는 실습 워커에는 필요 없고,
            # 빼면 준비 시간이 절반쯤 준다.
            argv += ["--without-mingle", "--without-gossip"]
        return argv + list(self.extra_args)

    @property
    def log(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        with self._changed:
            return "".join(self._lines[-lines:])

    def start(self) -> Worker:
        if self.proc is not None:
            raise WorkerError(f"{self.name}: already started")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # 새 세션(= 새 프로세스 그룹): 터미널의 Ctrl-C가 워커에 직접 가지 않고,
            # 멈출 때 이 워커와 그 풀 자식 프로세스만 정확히 골라낼 수 있다.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"log:{self.name}", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
            if self.on_line is not None:
                self.on_line(line.rstrip("\n"))
        with self._changed:
            self._changed.notify_all()

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """로그에 pattern(정규식)이 나타날 때까지 기다린다. 워커가 죽거나 시간이 지나면 WorkerError."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                match = regex.search("".join(self._lines))
                if match:
                    return match
                exited = self.proc is None or self.proc.poll() is not None
                remaining = deadline - time.monotonic()
                if not exited and remaining > 0:
                    self._changed.wait(min(remaining, 0.2))
                    continue
            if exited:
                if self._reader is not None:
                    self._reader.join(1)  # 읽기 스레드가 마지막 줄까지 넘겨받게 한다
                raise WorkerError(self._failure(f"exited before logging {pattern!r}"))
            raise WorkerError(self._failure(f"did not log {pattern!r} within {timeout:g} s"))

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> float:
        """워커가 준비될 때까지 기다리고, 걸린 시간(초)을 돌려준다.

        "<노드> ready." 로그가 나온 뒤, 브로커를 거친 ping에 그 노드가 답해야 준비된 것으로 본다.
        """
        started = time.monotonic()
        deadline = started + timeout
        self.node = self.wait_for_log(rf"({re.escape(self.name)}@\S+) ready\.", timeout).group(1)
        app = self._app()
        while not app.control.ping(destination=[self.node], timeout=PING_TIMEOUT_SECONDS):
            if self.proc is None or self.proc.poll() is not None:
                raise WorkerError(self._failure("exited before answering a ping"))
            if time.monotonic() > deadline:
                raise WorkerError(self._failure(f"did not answer a ping within {timeout:g} s"))
        return time.monotonic() - started

    def _app(self):
        return importlib.import_module(f"{self.lesson}.{self.module}").app

    def _wake(self) -> None:
        """쉬고 있는 워커의 이벤트 루프를 깨운다.

        워커는 신호를 받으면 표시만 해 두고, 이벤트 루프가 다음에 깨어날 때(쉬고 있으면 1초 넘게 걸린다)
        그 표시를 보고 멈추기 시작한다. 그 노드에 답장을 기다리지 않는 ping을 보내면 메시지가 도착하면서
        루프가 곧바로 깨어난다. 신호의 뜻(warm/cold)은 바뀌지 않는다.
        """
        if self.node is None:
            return
        with suppress(Exception):  # 깨우지 못해도 워커는 조금 늦게 멈출 뿐이다
            self._app().control.broadcast("ping", destination=[self.node], reply=False)

    def _failure(self, what: str) -> str:
        code = self.proc.poll() if self.proc else None
        status = f" (exit code {code})" if code is not None else ""
        return f"worker {self.name} {what}{status}.\n--- last lines of its log ---\n{self.log_tail()}"

    def pids(self) -> set[int]:
        """이 워커의 프로세스 그룹에 속한 살아 있는 PID(메인 프로세스와 풀 자식들)."""
        if self.proc is None:
            return set()
        return processes.in_group(self.proc.pid)

    def stop(self) -> int | None:
        """SIGTERM(warm) → SIGQUIT(cold) → SIGKILL 순서로, 이 워커의 PID에만 신호를 보낸다.

        여러 번, 여러 스레드에서 불러도 된다: 이미 멈춘 워커에는 아무 신호도 보내지 않는다.
        """
        if self.proc is None:
            return None
        with self._stop_lock:
            if self._exit_code is None:
                self._exit_code = self._stop()
            return self._exit_code

    def kill(self) -> int | None:
        """kill -9 로 워커째(메인 프로세스와 풀 자식 모두) 죽인다: 정리도, ack도, 결과 기록도 없다."""
        if self.proc is None:
            return None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return self.stop()

    # 멈출 때 차례로 보내는 신호와, 신호마다 끝나기를 기다리는 시간. 그래도 남으면 프로세스 그룹째 SIGKILL이다.
    SHUTDOWN: tuple[tuple[signal.Signals, float], ...] = (
        (signal.SIGTERM, WARM_SHUTDOWN_SECONDS),
        (signal.SIGQUIT, COLD_SHUTDOWN_SECONDS),
    )

    def _stop(self) -> int:
        assert self.proc is not None
        for sig, grace in self.SHUTDOWN:
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            self._wake()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        # 메인 프로세스가 끝난 뒤에도 남은 풀 자식이 있으면(그룹은 우리가 만든 것) 정리한다.
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


class Beat(Worker):
    """`python -m celery -A <lesson>.tasks beat` 프로세스 하나. 스케줄에 맞춰 작업 메시지를 보내기만 한다.

    워커와 같은 방법으로 띄우고 멈춘다. 스케줄 파일(-s)은 schedule에 둔다. 직접 띄우면 현재 폴더의
    celerybeat-schedule 을 쓰지만, 실행기와 테스트는 beat마다 자기 파일을 쓴다. 함께 실행되는 beat끼리 섞이지 않게
    하기 위해서다.
    beat는 ping에 답하지 않는다. 그래서 스케줄을 읽고 동작을 시작했다는 로그 줄을 준비로 본다.
    """

    def __init__(self, lesson: str, *, schedule: str | None = None, name: str | None = None, **options) -> None:
        super().__init__(lesson, name=name or f"beat-{uuid.uuid4().hex[:6]}", **options)
        # 스케줄 파일을 주지 않으면 이 beat만의 임시 폴더에 두고, 멈출 때 폴더째 지운다.
        self._own_dir = None if schedule else tempfile.mkdtemp(prefix="celery-playground-beat-")
        self.schedule = schedule or os.path.join(self._own_dir, "celerybeat-schedule")

    @property
    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "celery", "-A", f"{self.lesson}.{self.module}", "beat", "--loglevel=INFO"]
        return [*argv, f"--schedule={self.schedule}", *self.extra_args]

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> float:
        started = time.monotonic()
        self.wait_for_log(r"beat: Starting\.\.\.", timeout)
        return time.monotonic() - started

    def stop(self) -> int | None:
        code = super().stop()
        if self._own_dir:
            shutil.rmtree(self._own_dir, ignore_errors=True)
        return code


def free_port() -> int:
    """127.0.0.1에서 지금 비어 있는 포트 하나(운영체제가 고른다). 테스트가 따로 띄우는 웹 서버에 쓴다."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


WEB_STOP_SECONDS = 5  # SIGTERM을 받은 uvicorn이 열린 연결(SSE 스트림 등)을 닫고 끝나기를 기다리는 시간
HEALTH_TIMEOUT_SECONDS = 1.0


class WebServer(Worker):
    """`python -m uvicorn <모듈>:<앱> --host 127.0.0.1 --port N` 프로세스 하나. 실습의 웹 앱이다.

    워커와 같은 방법으로 띄우고 로그를 모은다. 준비는 `GET /health` 가 200으로 답하는 것으로 본다. 멈출 때는
    SIGTERM을 보내고(uvicorn의 graceful shutdown), WEB_STOP_SECONDS 안에 끝나지 않으면 SIGKILL을 보낸다.
    port를 주지 않으면 `<실습>_URL` 환경 변수(course.web_url_variable)의 포트, 그것도 없으면 spec의 기본 포트다.
    """

    def __init__(self, lesson: str, spec, *, port: int | None = None, name: str | None = None, **options) -> None:
        super().__init__(lesson, name=name or f"web-{uuid.uuid4().hex[:6]}", **options)
        self.spec = spec
        if port is None:
            port = urllib.parse.urlsplit(spec.url(lesson)).port or spec.port
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "uvicorn", self.spec.app, "--host", "127.0.0.1", f"--port={self.port}"]
        return [*argv, *self.extra_args]

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while not self._healthy():
            if self.proc is None or self.proc.poll() is not None:
                raise WorkerError(self._failure("exited before answering GET /health"))
            if time.monotonic() > deadline:
                raise WorkerError(self._failure(f"did not answer GET /health within {timeout:g} s"))
            time.sleep(0.05)
        return time.monotonic() - started

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=HEALTH_TIMEOUT_SECONDS) as answer:
                return answer.status == 200
        except OSError:
            return False

    def _failure(self, what: str) -> str:
        return super()._failure(what).replace("worker ", "web server ", 1)

    SHUTDOWN = ((signal.SIGTERM, WEB_STOP_SECONDS),)  # uvicorn의 graceful shutdown. SIGQUIT 단계는 없다

    def _wake(self) -> None:
        """uvicorn은 SIGTERM을 곧바로 알아챈다. 워커처럼 ping으로 깨울 이벤트 루프가 없다."""


@contextmanager
def running(*workers: Worker, timeout: float = READY_TIMEOUT_SECONDS) -> Iterator[tuple[Worker, ...]]:
    """워커들을 띄우고 모두 준비되면 넘겨준다. 블록을 나갈 때(예외가 나도) 모두 멈춘다."""
    with ExitStack() as stack:
        stack.callback(stop_all, workers)
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready(timeout)
        yield workers


def stop_all(workers: Sequence[Worker]) -> None:
    """워커들을 한꺼번에 멈춘다: 쉬고 있는 워커도 warm shutdown에 몇 초가 걸리므로 차례로 기다리지 않는다."""
    threads = [threading.Thread(target=worker.stop, name=f"stop:{worker.name}") for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
