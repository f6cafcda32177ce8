"""실제 헤드리스 Chromium 하나를 띄워 페이지를 열고, JavaScript를 실행하고, 화면을 찍고, PID로 멈춘다.

웹 페이지를 보여 주는 실습의 테스트가 이 모듈을 쓴다. 표준 라이브러리만 쓴다. Chromium과는 DevTools 프로토콜로
이야기한다. `--remote-debugging-pipe` 로 띄우면 Chromium은 fd 3에서 명령을 읽고 fd 4에 답과 이벤트를 쓴다. 메시지
하나는 JSON 하나이고, 메시지 사이는 NUL 바이트(b"\\0") 하나로 나뉜다.

    with Browser() as browser:
        browser.open("http://127.0.0.1:8000/")
        browser.wait_for("document.querySelector('#status').textContent === '완료'", "진행 막대가 끝나기")
        browser.screenshot(ARTIFACTS / "practice16" / "done.png")
        assert browser.console_errors() == []

브라우저는 127.0.0.1 말고는 아무 데도 가지 못한다(NETWORK_FLAGS 위의 주석). 찍은 화면은 ARTIFACTS(저장소의
`artifacts/`, git이 무시한다)에 둔다.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from course import WAIT_SECONDS, wait_until
from playground import PROJECT_ROOT, processes

# 테스트가 찍은 화면 같은 산출물을 두는 곳. .gitignore 에 있다. CI는 이 폴더를 통째로 보관하면 된다.
ARTIFACTS = PROJECT_ROOT / "artifacts"

# Chromium이 첫 명령(Browser.getVersion)에 답하기까지의 상한. 이 기계에서는 1초 안팎이 걸린다.
START_TIMEOUT_SECONDS = 30
# 명령 하나의 답을 기다리는 상한. 페이지를 여는 것(open)은 load 이벤트까지 따로 WAIT_SECONDS를 기다린다.
CALL_TIMEOUT_SECONDS = 10
# 멈출 때: Browser.close 명령 뒤 스스로 끝나기를, SIGTERM 뒤 끝나기를 기다리는 시간. 그래도 남으면 SIGKILL이다.
CLOSE_SECONDS = 5
TERM_SECONDS = 5
# 프로세스가 끝났는지 다시 보는 간격.
EXIT_POLL_SECONDS = 0.05
# 파이프가 닫힌 뒤 종료 코드가 보이기까지 기다리는 시간. 커널은 파일을 먼저 닫고 프로세스를 끝낸다.
EXIT_AFTER_EOF_SECONDS = 1
# 시작하지 못했을 때 실패 메시지에 붙이는 Chromium 로그의 마지막 줄 수.
LOG_TAIL_LINES = 20

DEFAULT_WIDTH = 800
DEFAULT_HEIGHT = 600

# Debian의 /usr/bin/chromium 은 셸 스크립트다. /etc/chromium.d 의 설정을 읽어 플래그를 더한 뒤 아래 실행 파일을
# exec 한다. 더하는 플래그에는 --enable-remote-extensions 가 있고, Google API 키도 환경 변수로 넘긴다. 이 모듈은 쓰는
# 플래그를 모두 스스로 정하므로, 스크립트를 거치지 않고 실행 파일을 직접 띄운다.
DEBIAN_BINARY = "/usr/lib/chromium/chromium"
NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = (
    "Install it: `apt-get install -y --no-install-recommends chromium` (Debian), "
    "or pass Browser(executable=...) the path of a Chromium or Chrome binary."
)

# 127.0.0.1 말고는 아무 데도 가지 않게 하는 플래그들.
# - 모든 요청은 프록시를 거친다. 프록시 주소는 이 브라우저를 위해 잡아 둔 127.0.0.1 포트인데, 아무도 듣지 않으니
#   연결이 곧바로 거절된다({closed_port}). 프록시가 실패해도 직접 연결로 넘어가지 않는다(목록에 DIRECT가 없다).
# - 프록시를 거치지 않는 곳은 127.0.0.1 하나다. `<-loopback>` 은 Chromium이 스스로 더하는 예외(localhost,
#   127.0.0.0/8, [::1])를 뺀다. 그래서 localhost와 127.0.0.2도 막힌다.
# - 프록시를 쓰지 않는 길(WebRTC의 UDP)도 막고, 127.0.0.1 말고는 이름을 찾지 못하게 한다(~NOTFOUND).
NETWORK_FLAGS = (
    "--proxy-server=http://127.0.0.1:{closed_port}",
    "--proxy-bypass-list=<-loopback>;127.0.0.1",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
# Chromium이 스스로 밖에 나가는 일(업데이트, 동기화, 통계, 추천, 충돌 보고)과 첫 실행 화면을 끈다.
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
)
# Docker 컨테이너의 /dev/shm 은 기본 64MB라서 Chromium이 공유 메모리를 다 쓰고 죽을 수 있다. /tmp 를 쓰게 한다.
# 스크롤 막대는 찍은 화면의 크기와 모양을 바꾸므로 숨긴다.
PAGE_FLAGS = ("--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


class BrowserError(RuntimeError):
    """Chromium을 찾지 못했거나, 뜨지 못했거나, 명령이 실패했거나, 제시간에 답하지 않았다."""


def find_chromium() -> str:
    """띄울 Chromium 실행 파일의 경로. 없으면 설치하는 법을 말하는 BrowserError."""
    if os.access(DEBIAN_BINARY, os.X_OK):
        return DEBIAN_BINARY
    for name in NAMES:
        if found := shutil.which(name):
            return found
    raise BrowserError(
        f"Chromium not found (looked for {DEBIAN_BINARY} and {', '.join(NAMES)} on PATH). {INSTALL_HINT}"
    )


def _high_fd(fd: int) -> int:
    """fd를 10 이상의 번호로 옮긴다. 자식 프로세스에서 3, 4번으로 dup2 할 때 원래 번호와 겹치지 않게 한다."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """헤드리스 Chromium 프로세스 하나와, 그 안에서 연 탭(페이지) 하나.

    프로필(--user-data-dir)은 매번 새 임시 폴더이고 멈출 때 지운다. 화면 크기는 width×height CSS 픽셀이고, 찍은
    PNG도 그 크기다(deviceScaleFactor 1).
    """

    def __init__(
        self, executable: str | None = None, *, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT
    ) -> None:
        self.executable = executable
        self.width = width
        self.height = height
        self.pid: int | None = None
        self.start_seconds: float | None = None  # 띄운 뒤 첫 답이 오기까지 걸린 시간
        self.version: str | None = None  # 예: "Chrome/156.0.8078.114"
        self.profile: str | None = None
        self._exit_code: int | None = None
        self._commands = -1  # Chromium에 명령을 쓰는 fd
        self._replies = -1  # Chromium의 답과 이벤트를 읽는 fd
        self._closed_port: socket.socket | None = None
        self._session: str | None = None  # 연 탭에 붙은 세션. 탭에 보내는 명령에 붙인다
        self._next_id = 0
        self._answers: dict[int, dict] = {}
        self._events: list[dict] = []
        self._errors: list[str] = []
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None
        self._eof = False
        self._write_lock = threading.Lock()
        self._stop_lock = threading.Lock()

    # --- 띄우기 ---

    def argv(self) -> list[str]:
        """Chromium에 주는 명령 줄. start() 가 실행 파일, 프로필, 닫힌 포트를 정한 뒤에 부른다."""
        assert self.executable is not None and self._closed_port is not None and self.profile is not None
        closed_port = self._closed_port.getsockname()[1]
        argv = [
            self.executable,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={self.width},{self.height}",
            *(flag.format(closed_port=closed_port) for flag in NETWORK_FLAGS),
            *QUIET_FLAGS,
            *PAGE_FLAGS,
        ]
        if os.geteuid() == 0:
            # root로는 Chromium이 샌드박스를 켜고 뜨지 못한다("Running as root without --no-sandbox is not
            # supported"). CI와 컨테이너는 흔히 root로 돌므로, 그때만 샌드박스를 끈다. 여는 페이지는 테스트가
            # 127.0.0.1에 띄운 우리 페이지뿐이다.
            argv.append("--no-sandbox")
        return [*argv, "about:blank"]

    def start(self) -> Browser:
        """Chromium을 띄우고, 답할 때까지 기다리고, 빈 탭 하나를 열어 붙는다."""
        if self.pid is not None:
            raise BrowserError("this Browser was already started")
        executable = self.executable or find_chromium()
        if not os.access(executable, os.X_OK):
            raise BrowserError(f"Chromium not found at {executable}. {INSTALL_HINT}")
        self.executable = executable
        self.profile = tempfile.mkdtemp(prefix="celery-playground-chromium-")
        # 프록시로 쓸 포트: bind만 하고 listen하지 않는다. 브라우저가 떠 있는 동안 다른 프로세스가 이 포트를 잡지
        # 못하고, 연결은 모두 거절된다.
        self._closed_port = socket.socket()
        self._closed_port.bind(("127.0.0.1", 0))
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        commands_read, replies_write = _high_fd(commands_read), _high_fd(replies_write)
        started = time.monotonic()
        try:
            # posix_spawn은 fork 없이 띄우면서 자식의 fd 3, 4에 파이프를 놓는다(스레드가 있어도 안전하다).
            # setsid: 새 세션이자 새 프로세스 그룹이다. Chromium이 띄우는 자식(zygote, 렌더러, GPU)이 모두 이 그룹에
            # 들어가므로, 멈출 때 이 브라우저의 프로세스만 골라 신호를 보낼 수 있다.
            self.pid = os.posix_spawn(
                executable,
                self.argv(),
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                    (os.POSIX_SPAWN_DUP2, commands_read, 3),
                    (os.POSIX_SPAWN_DUP2, replies_write, 4),
                ],
                setsid=True,
            )
        except OSError as exc:
            self._cleanup()
            raise BrowserError(f"could not start {executable}: {exc}. {INSTALL_HINT}") from exc
        finally:
            os.close(commands_read)
            os.close(replies_write)
        self._reader = threading.Thread(target=self._read, name=f"chromium:{self.pid}", daemon=True)
        self._reader.start()
        try:
            self.version = self.call("Browser.getVersion", timeout=START_TIMEOUT_SECONDS)["product"]
            self.start_seconds = time.monotonic() - started
            self._open_tab()
        except BaseException:
            self.stop()
            raise
        return self

    def _open_tab(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    @property
    def log_path(self) -> str:
        """Chromium의 stdout과 stderr가 가는 파일(프로필 폴더 안)."""
        assert self.profile is not None
        return os.path.join(self.profile, "chromium.log")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Chromium 로그의 마지막 lines줄. 아직 띄우지 않았거나 로그가 없으면 빈 문자열이다."""
        if self.profile is None:
            return ""
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return ""

    # --- DevTools 프로토콜 ---

    def _read(self) -> None:
        """Chromium이 fd 4에 쓰는 메시지를 읽어, 답은 id별로, 이벤트는 차례대로 모은다. 파이프가 닫히면 끝난다."""
        pending = b""
        try:
            while chunk := os.read(self._replies, 1 << 16):
                pending += chunk
                *messages, pending = pending.split(b"\0")
                for raw in messages:
                    self._receive(json.loads(raw))
        finally:
            # 읽기를 그만두면(파이프가 닫혔거나 읽지 못할 메시지가 왔다) 기다리는 쪽이 곧바로 알게 한다.
            with self._changed:
                self._eof = True
                self._changed.notify_all()

    def _receive(self, message: dict) -> None:
        with self._changed:
            if "id" in message:
                self._answers[message["id"]] = message
            else:
                self._events.append(message)
                if (error := _console_error(message)) is not None:
                    self._errors.append(error)
            self._changed.notify_all()

    def call(self, method: str, params: dict | None = None, *, timeout: float = CALL_TIMEOUT_SECONDS) -> dict:
        """DevTools 명령 하나를 보내고 그 답(result)을 돌려준다.

        Browser.…, Target.… 명령은 브라우저에 가고, 나머지는 연 탭에 간다.
        """
        message: dict = {"method": method, "params": params or {}}
        if self._session is not None and not method.startswith(("Browser.", "Target.")):
            message["sessionId"] = self._session
        with self._write_lock:
            self._next_id += 1
            message["id"] = number = self._next_id
            try:
                os.write(self._commands, json.dumps(message).encode() + b"\0")
            except OSError as exc:
                raise BrowserError(self._failure(f"could not send {method} ({exc})")) from exc
        answer = self._wait(lambda: self._answers.pop(number, None), f"an answer to {method}", timeout)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error'].get('message')} ({answer['error']})")
        return answer.get("result", {})

    def _wait[T](self, found: Callable[[], T | None], what: str, timeout: float) -> T:
        """found() 가 None 아닌 값을 낼 때까지(메시지가 올 때마다 다시 본다) 기다린다. 파이프가 닫히거나 시간이
        지나면 BrowserError.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while (value := found()) is None:
                remaining = deadline - time.monotonic()
                if self._eof:
                    raise BrowserError(self._failure(f"closed its pipe before sending {what}"))
                if remaining <= 0:
                    raise BrowserError(self._failure(f"did not send {what} within {timeout:g} s"))
                self._changed.wait(remaining)
            return value

    def _failure(self, what: str) -> str:
        if self._eof:
            self._exited_within(EXIT_AFTER_EOF_SECONDS)
        code = self._exit_status()
        status = f" (exit code {code})" if code is not None else ""
        return f"chromium (pid {self.pid}) {what}{status}.\n--- last lines of its log ---\n{self.log_tail()}"

    # --- 페이지 ---

    def open(self, url: str, timeout: float = WAIT_SECONDS) -> None:
        """url을 열고 load 이벤트까지 기다린다. 열지 못하면(막힌 주소, 꺼진 서버) Chromium의 오류 이름(net::ERR_…)을
        담은 BrowserError. 앞 페이지에서 모은 오류(console_errors)는 비운다.
        """
        with self._changed:
            seen = len(self._events)
            self._errors.clear()
        navigation = self.call("Page.navigate", {"url": url})
        if error := navigation.get("errorText"):
            raise BrowserError(f"could not open {url}: {error}")

        def loaded() -> dict | None:
            return next((e for e in self._events[seen:] if e.get("method") == "Page.loadEventFired"), None)

        self._wait(loaded, f"the load event of {url}", timeout)

    def evaluate(self, expression: str) -> object:
        """페이지에서 JavaScript 식 하나를 계산해 그 값을 JSON으로 옮겨 돌려준다. Promise면 풀릴 때까지 기다린다.

        식이 예외를 내면 그 메시지를 담은 BrowserError. undefined는 None이 된다.
        """
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if details := answer.get("exceptionDetails"):
            thrown = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript threw: {thrown} (in {expression!r})")
        return answer["result"].get("value")

    def wait_for(self, expression: str, what: str | None = None, timeout: float = WAIT_SECONDS) -> object:
        """JavaScript 식이 참인 값을 낼 때까지 기다리고 그 값을 돌려준다.

        course.wait_until 으로 기다린다. timeout 초 안에 참이 되지 않으면 NotInTime이고, 메시지는 what(없으면 식)과
        그때 식이 낸 값을 말한다.
        """
        last: list[object] = []

        def holds() -> object:
            last[:] = [self.evaluate(expression)]
            return last[0]

        try:
            return wait_until(holds, what or expression, timeout)
        except Exception as exc:
            if last:
                exc.add_note(f"last value of {expression!r}: {last[0]!r}")
            raise

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """지금 화면을 PNG로 path에 쓰고 그 경로를 돌려준다. 폴더가 없으면 만든다."""
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def console_errors(self) -> list[str]:
        """마지막으로 open() 한 뒤 나온 오류들: console.error, 잡히지 않은 예외, 불러오지 못한 자원(Log 도메인의
        error)이다. 한 줄에 하나씩이다.
        """
        with self._changed:
            return list(self._errors)

    # --- 멈추기 ---

    def _exit_status(self) -> int | None:
        """Chromium 메인 프로세스가 끝났으면 종료 코드(신호로 끝났으면 음수), 아직 돌고 있으면 None.

        끝난 프로세스를 거두지는 않는다(WNOWAIT). 거두기 전까지는 PID가 다른 프로세스에 다시 쓰이지 않으므로, 그
        사이에 보내는 신호는 반드시 이 브라우저의 그룹에 간다.
        """
        if self._exit_code is not None:
            return self._exit_code
        if self.pid is None:
            return None
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return None
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def _exited_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self._exit_status() is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(EXIT_POLL_SECONDS)
        return True

    def stop(self, close_seconds: float = CLOSE_SECONDS, term_seconds: float = TERM_SECONDS) -> int | None:
        """Browser.close 명령 → SIGTERM → SIGKILL 순서로 멈추고 종료 코드(신호로 끝났으면 음수)를 돌려준다.

        close_seconds는 Browser.close 뒤에, term_seconds는 SIGTERM 뒤에 스스로 끝나기를 기다리는 시간이다. 그래서
        답하지 않는 브라우저도 2 × close_seconds + term_seconds 남짓이면 멈춘다. 신호는 이 브라우저의 프로세스
        그룹에만 보낸다. 여러 번 불러도 된다.
        """
        with self._stop_lock:
            if self.pid is None or self._exit_code is not None:
                self._cleanup()
                return self._exit_code
            if self._exit_status() is None and not self._eof:
                with suppress(BrowserError):  # 답하지 않는 브라우저는 아래에서 신호로 멈춘다
                    self.call("Browser.close", timeout=close_seconds)
            if not self._exited_within(close_seconds):
                self._signal_group(signal.SIGTERM)
                if not self._exited_within(term_seconds):
                    self._signal_group(signal.SIGKILL)
            # 메인 프로세스가 끝난 뒤에도 그룹에 남은 자식이 있으면(그룹은 우리가 만든 것) 마저 정리한다.
            self._signal_group(signal.SIGKILL)
            _, status = os.waitpid(self.pid, 0)
            self._exit_code = os.waitstatus_to_exitcode(status)
            self._cleanup()
            return self._exit_code

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.pid is not None
        with suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def pids(self) -> set[int]:
        """이 브라우저의 프로세스 그룹에 속한 살아 있는 PID들(메인 프로세스와 그 자식들)."""
        return processes.in_group(self.pid) if self.pid is not None else set()

    def _cleanup(self) -> None:
        """파이프, 잡아 둔 포트, 프로필 폴더를 정리한다. 읽기 스레드는 Chromium이 끝나 파이프가 닫히면 스스로 끝난다."""
        if self._commands >= 0:
            os.close(self._commands)
            self._commands = -1
        if self._reader is not None:
            self._reader.join(CALL_TIMEOUT_SECONDS)
        if self._replies >= 0 and (self._reader is None or not self._reader.is_alive()):
            os.close(self._replies)
            self._replies = -1
        if self._closed_port is not None:
            self._closed_port.close()
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _console_error(event: dict) -> str | None:
    """DevTools 이벤트가 페이지의 오류면 한 줄 설명, 아니면 None."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
        return "console.error: " + " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return "uncaught: " + (details.get("exception", {}).get("description") or details.get("text", ""))
    if method == "Log.entryAdded" and params["entry"].get("level") == "error":
        entry = params["entry"]
        return f"{entry.get('source')}: {entry.get('text')}" + (f" ({entry['url']})" if entry.get("url") else "")
    return None
