"""playground/browser.py: 실제 헤드리스 Chromium이 127.0.0.1의 실제 HTTP 서버에서 페이지를 여는가.

서버는 표준 라이브러리의 http.server 다. 페이지는 EventSource로 서버가 보내는 SSE(server-sent events) 흐름을 받아
진행 막대와 글자를 바꾼다. 웹 페이지를 보여 주는 실습의 테스트가 이 드라이버로 확인하는 것과 같은 모양이다.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from course import NotInTime, wait_until
from playground.browser import ARTIFACTS, Browser, BrowserError
from tests import WAIT_SECONDS

# 브라우저 하나를 모듈의 테스트들이 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group("browser")

# SSE 흐름이 단계 하나를 보내기 전에 쉬는 시간. 페이지가 정말로 시간에 따라 바뀌는지 보려고 둔다.
STEP_SECONDS = 0.2
STEPS = 3
# 진행 막대를 채우는 색. 찍은 화면에 이 색이 있으면 끝난 상태가 찍힌 것이다.
FILL = (0x22, 0xAA, 0x77)
# 답하지 않는 브라우저를 멈출 때의 짧은 유예. 기본값(몇 초)을 기다리지 않으려고 줄인다.
GRACE_SECONDS = 0.5

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>progress</title>
<style>
  body { margin: 0; padding: 24px; background: #ffffff; font: 24px sans-serif; }
  #bar { background: #dddddd; height: 48px; }
  #fill { background: #22aa77; height: 48px; width: 0; }
</style></head>
<body>
<div id="bar"><div id="fill"></div></div>
<progress id="progress" max="STEPS" value="0"></progress>
<p id="status">waiting</p>
<script>
  window.seen = [];
  const source = new EventSource("/events");
  source.onmessage = (event) => {
    const step = JSON.parse(event.data);
    window.seen.push(step.done);
    document.getElementById("progress").value = step.done;
    document.getElementById("fill").style.width = (100 * step.done / step.total) + "%";
    const finished = step.done === step.total;
    document.getElementById("status").textContent = finished ? "done" : step.done + "/" + step.total;
    if (finished) source.close();  // 닫지 않으면 서버가 흐름을 끝낸 뒤 EventSource가 다시 연결한다
  };
</script>
</body></html>
""".replace("STEPS", str(STEPS))

BROKEN = """<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
<img src="/missing.png">
<script>console.error("broken page", 42); throw new Error("uncaught on purpose");</script>
</body></html>
"""


class Site(BaseHTTPRequestHandler):
    """`/` 는 페이지, `/events` 는 SSE 흐름, `/broken` 은 오류를 내는 페이지다. 받은 요청의 경로를 서버에 적는다."""

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path == "/":
            self._send(200, "text/html; charset=utf-8", PAGE.encode())
        elif self.path == "/broken":
            self._send(200, "text/html; charset=utf-8", BROKEN.encode())
        elif self.path == "/events":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for done in range(1, STEPS + 1):
                time.sleep(STEP_SECONDS)
                try:
                    self.wfile.write(f"data: {json.dumps({'done': done, 'total': STEPS})}\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # 흐름이 끝나기 전에 브라우저가 다른 페이지로 갔다
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass  # 요청마다 stderr에 찍지 않는다


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), Site)
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def serving(host: str) -> Iterator[Server]:
    server = Server(host)
    thread = threading.Thread(target=server.serve_forever, name=f"http:{host}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT_SECONDS)


@pytest.fixture(scope="module")
def site() -> Iterator[Server]:
    yield from serving("127.0.0.1")


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[Server]:
    # 같은 기계의 다른 루프백 주소. 정말로 응답하는 서버라서, 브라우저가 열지 못하면 그것은 브라우저의 규칙 때문이다.
    yield from serving("127.0.0.2")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as browser:
        yield browser


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """8비트 RGB나 RGBA PNG를 풀어 (너비, 높이, 픽셀마다 색 바이트)를 돌려준다. Chromium이 찍는 PNG가 그 꼴이다."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (chunks[0][0], depth, colour, interlace) in {(b"IHDR", 8, 2, 0), (b"IHDR", 8, 6, 0)}
    size = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * size
    rows, previous = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - size] if x >= size else 0
            up, corner = previous[x], previous[x - size] if x >= size else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[x] = (line[x] + near[2]) & 0xFF
        rows.append(bytes(line))
        previous = line
    pixels = [row[x : x + size][:3] for row in rows for x in range(0, stride, size)]
    return width, height, pixels


def test_the_driver_waits_until_the_event_stream_has_moved_the_page_to_its_last_step(browser, site):
    browser.open(f"{site.url}/")
    assert browser.evaluate("document.getElementById('status').textContent") == "waiting"
    browser.wait_for("document.getElementById('status').textContent === 'done'", "the page's last step", WAIT_SECONDS)
    # 페이지는 흐름이 보낸 단계를 하나씩 모두 보았다. 끝 상태만 한 번에 받은 것이 아니다.
    assert browser.evaluate("window.seen") == list(range(1, STEPS + 1))
    assert browser.evaluate("document.getElementById('progress').value") == STEPS
    assert browser.console_errors() == []
    assert site.paths[-2:] == ["/", "/events"]


def test_a_screenshot_is_a_png_of_the_viewport_that_shows_the_finished_bar(browser, site):
    browser.open(f"{site.url}/")
    browser.wait_for("document.getElementById('status').textContent === 'done'", "the page's last step", WAIT_SECONDS)
    path = browser.screenshot(ARTIFACTS / "test_browser" / "progress-done.png")
    width, height, pixels = png_pixels(path.read_bytes())
    assert (width, height) == (browser.width, browser.height)
    colours = set(pixels)
    assert len(colours) > 2, f"the screenshot has only {colours}"
    # 48px 높이의 막대가 가로로 꽉 찼다(여백 24px을 뺀 너비).
    assert pixels.count(bytes(FILL)) >= 48 * (width - 2 * 24)


def test_evaluate_returns_json_values_awaits_promises_and_raises_what_the_page_threw(browser, site):
    browser.open(f"{site.url}/")
    assert browser.evaluate("[1, 'a', {b: null}, 2.5]") == [1, "a", {"b": None}, 2.5]
    assert browser.evaluate("new Promise(resolve => setTimeout(() => resolve('later'), 50))") == "later"
    assert browser.evaluate("undefined") is None
    with pytest.raises(BrowserError, match="JavaScript threw: Error: thrown in the page"):
        browser.evaluate("(() => { throw new Error('thrown in the page') })()")


def test_wait_for_gives_up_within_its_timeout_naming_what_it_waited_for(browser, site):
    browser.open(f"{site.url}/")
    with pytest.raises(NotInTime, match="a status that never comes") as caught:
        browser.wait_for("document.getElementById('status').textContent === 'never'", "a status that never comes", 0.3)
    assert "last value" in "\n".join(caught.value.__notes__)


def test_console_errors_lists_console_error_uncaught_exceptions_and_failed_loads(browser, site):
    browser.open(f"{site.url}/broken")

    def three_errors() -> list[str] | None:
        errors = browser.console_errors()
        return errors if len(errors) >= 3 else None

    errors = wait_until(three_errors, "three errors from the broken page", WAIT_SECONDS)
    assert any(error == "console.error: broken page 42" for error in errors), errors
    assert any(error.startswith("uncaught: Error: uncaught on purpose") for error in errors), errors
    assert any("404" in error and "/missing.png" in error for error in errors), errors
    # 다음 페이지를 열면 앞 페이지의 오류는 비워진다.
    browser.open(f"{site.url}/")
    assert browser.console_errors() == []


def test_no_address_but_127_0_0_1_can_be_loaded(browser, site, elsewhere):
    # 127.0.0.2의 서버는 이 기계에서 정말로 응답한다(환경 변수의 프록시를 쓰지 않고 직접 묻는다).
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(f"{elsewhere.url}/", timeout=WAIT_SECONDS) as answer:
        assert answer.status == 200
    asked = len(elsewhere.paths)
    port = site.server_address[1]
    blocked = [f"{elsewhere.url}/", f"http://localhost:{port}/", "http://example.com/", "http://1.1.1.1/"]
    for url in blocked:
        with pytest.raises(BrowserError, match=r"net::ERR_PROXY_CONNECTION_FAILED"):
            browser.open(url)
    # 127.0.0.1의 페이지 안에서 보내는 요청도 막힌다.
    browser.open(f"{site.url}/")
    fetched = browser.evaluate(f"fetch('{elsewhere.url}/').then(() => 'loaded', error => 'refused: ' + error)")
    assert fetched == "refused: TypeError: Failed to fetch"
    assert len(elsewhere.paths) == asked, "the browser reached the server on 127.0.0.2"


def test_a_missing_chromium_is_an_error_that_says_how_to_install_it():
    with pytest.raises(BrowserError, match=r"Chromium not found at /nonexistent/chromium\. Install it: `apt-get"):
        Browser(executable="/nonexistent/chromium").start()


def test_a_chromium_that_exits_at_start_is_an_error_naming_its_exit_code():
    failed = Browser(executable="/bin/false")
    # /bin/false 는 파이프를 읽지 않고 끝난다. 첫 명령을 쓰다가 실패하거나, 답을 기다리다 파이프가 닫힌다.
    with pytest.raises(BrowserError, match=r"chromium \(pid \d+\) .*Browser\.getVersion.* \(exit code 1\)"):
        failed.start()
    assert failed.pids() == set()
    assert not Path(failed.profile).exists()


def test_stop_ends_every_process_of_the_browser_and_removes_its_profile():
    browser = Browser().start()
    pids = browser.pids()
    assert browser.pid in pids and len(pids) > 1  # 메인 프로세스와 그 자식들(zygote, 렌더러, GPU)
    assert browser.stop() == 0
    assert browser.pids() == set()
    assert not Path(browser.profile).exists()
    assert browser.stop() == 0  # 두 번 불러도 된다


def test_stop_kills_a_browser_that_no_longer_answers():
    browser = Browser().start()
    os.kill(browser.pid, signal.SIGSTOP)  # 멈춘 프로세스는 Browser.close에도 SIGTERM에도 답하지 않는다
    assert browser.stop(close_seconds=GRACE_SECONDS, term_seconds=GRACE_SECONDS) == -signal.SIGKILL
    assert browser.pids() == set()
