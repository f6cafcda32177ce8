"""practice16 README의 페이지(`/`)를 실제 헤드리스 Chromium에서 연다. 워커와 uvicorn도 실제 프로세스다.

단추를 누르면 진행 막대가 중간값을 거쳐 끝까지 차고, 작업 id는 워커가 정말로 실행한 작업의 id다. 끝난 화면을 찍고,
README가 보여 주는 practice16/page.png 가 같은 크기의 PNG인지 본다. 실행 중에 취소한 보고서는 오류 상태로 끝난다.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from playground import PROJECT_ROOT
from playground.browser import ARTIFACTS, Browser
from playground.workers import WebServer, Worker
from practice16.tasks import app
from tests import WAIT_SECONDS
from tests.test_browser import png_pixels

LESSON = "practice16"
# 워커, 웹 서버, 브라우저 하나씩을 모듈의 테스트들이 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group("practice16_page")
PAGES = 4  # 한 쪽에 0.3초(STEP_SECONDS), SSE는 0.2초마다 읽는다. 중간값이 여러 번 보인다
LONG_PAGES = 20  # 취소할 보고서. 취소하기 전에 끝나지 않을 만큼 길다
# 화면 크기. 페이지의 글(32rem 너비)과 상태 줄까지 빈 곳 없이 들어간다. README의 그림도 이 크기다.
WIDTH, HEIGHT = 640, 260
SCREENSHOT = ARTIFACTS / LESSON / "page.png"
README_IMAGE = PROJECT_ROOT / LESSON / "page.png"

# 단추를 누르기 전에 페이지에 둔다. 진행 막대나 상태 줄이 바뀔 때마다 그때의 값을 window.seen 에 적는다.
OBSERVE = """(() => {
  const progress = document.querySelector('#progress'), status = document.querySelector('#status');
  window.seen = [];
  const note = () => window.seen.push({value: progress.value, max: progress.max, state: status.dataset.state});
  const observer = new MutationObserver(note);
  observer.observe(progress, {attributes: true});
  observer.observe(status, {attributes: true, childList: true, characterData: true, subtree: true});
})()"""


def _start(browser: Browser, pages: int) -> None:
    browser.evaluate(OBSERVE)
    browser.evaluate(f"document.querySelector('#pages').value = '{pages}'; document.querySelector('#start').click()")


def _state_is(*states: str) -> str:
    return f"{json.dumps(list(states))}.includes(document.querySelector('#status').dataset.state)"


def _report_id(browser: Browser) -> str:
    return browser.evaluate("document.querySelector('#report-id').textContent")


@pytest.fixture(scope="module")
def web(lesson_processes) -> WebServer:
    return next(process for process in lesson_processes if isinstance(process, WebServer))


@pytest.fixture(scope="module")
def worker(lesson_processes) -> Worker:
    return next(process for process in lesson_processes if not isinstance(process, WebServer))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(width=WIDTH, height=HEIGHT) as browser:
        yield browser


@pytest.fixture(scope="module")
def finished(browser, web) -> dict:
    """페이지를 열고 PAGES쪽 보고서를 요청해 끝날 때까지 기다린 뒤, 본 값들과 찍은 화면을 돌려준다."""
    browser.open(f"{web.url}/", WAIT_SECONDS)
    before = browser.evaluate("document.querySelector('#status').dataset.state")
    _start(browser, PAGES)
    browser.wait_for(_state_is("SUCCESS", "FAILURE", "REVOKED", "ERROR", "TIMEOUT"), "보고서가 끝나기", WAIT_SECONDS)
    return {
        "before": before,
        "seen": browser.evaluate("window.seen"),
        "end": browser.evaluate(
            "({value: document.querySelector('#progress').value, max: document.querySelector('#progress').max,"
            " state: document.querySelector('#status').dataset.state,"
            " text: document.querySelector('#status').textContent})"
        ),
        "id": _report_id(browser),
        "errors": browser.console_errors(),
        "screenshot": browser.screenshot(SCREENSHOT),
    }


def test_the_bar_moves_through_intermediate_values_to_full_and_shows_the_id_the_worker_ran(finished, worker):
    assert finished["before"] == ""  # 아직 요청하지 않았다
    assert finished["end"] == {"value": PAGES, "max": PAGES, "state": "SUCCESS", "text": f"끝났습니다: {PAGES}쪽"}
    values = [snapshot["value"] for snapshot in finished["seen"] if snapshot["max"] == PAGES]
    assert any(0 < value < PAGES for value in values), finished["seen"]  # 끝 상태만 한 번에 받은 것이 아니다
    assert values == sorted(values), finished["seen"]  # 막대는 뒤로 가지 않았다
    assert "PROGRESS" in {snapshot["state"] for snapshot in finished["seen"]}, finished["seen"]
    # 페이지가 보여 준 id는 워커가 실행해 결과 백엔드에 적은 작업의 id다.
    report_id = finished["id"]
    meta = app.backend.get_task_meta(report_id)
    assert (meta["status"], meta["result"]["pages"]) == ("SUCCESS", PAGES), meta
    worker.wait_for_log(rf"practice16\.tasks\.make_report\[{report_id}\] succeeded", WAIT_SECONDS)
    assert finished["errors"] == []


def test_the_screenshot_of_the_finished_page_has_the_size_of_the_readme_image(finished, browser):
    width, height, pixels = png_pixels(finished["screenshot"].read_bytes())
    assert (width, height) == (browser.width, browser.height)
    colours = set(pixels)
    assert len(colours) > 2, f"the screenshot has only {colours}"
    # README가 보여 주는 그림은 이 테스트가 찍은 화면을 옮긴 것이다. 화면 크기나 페이지가 바뀌어 그림과 어긋나면 안다.
    readme_width, readme_height, _ = png_pixels(README_IMAGE.read_bytes())
    assert (readme_width, readme_height) == (width, height)


def test_a_report_cancelled_while_it_runs_ends_in_an_error_state_on_the_page(browser, web, worker):
    # 페이지에는 실패할 보고서(fail_at)를 요청하는 칸이 없다. 다른 곳(여기서는 같은 페이지의 fetch)에서 실행 중인
    # 보고서를 취소하면, 페이지는 SSE의 done 이벤트로 REVOKED와 오류를 받는다.
    browser.open(f"{web.url}/", WAIT_SECONDS)
    _start(browser, LONG_PAGES)
    browser.wait_for(_state_is("PROGRESS"), "보고서가 실행되기", WAIT_SECONDS)
    report_id = _report_id(browser)
    cancelled = browser.evaluate(f"fetch('/reports/{report_id}', {{method: 'DELETE'}}).then(answer => answer.status)")
    assert cancelled == 202
    browser.wait_for(_state_is("REVOKED"), "취소한 보고서가 끝나기", WAIT_SECONDS)
    text = browser.evaluate("document.querySelector('#status').textContent")
    assert text == "끝났습니다: REVOKED (TaskRevokedError: terminated)"
    progress = browser.evaluate("[document.querySelector('#progress').value, document.querySelector('#progress').max]")
    assert 0 < progress[0] < LONG_PAGES and progress[1] == LONG_PAGES  # 막대는 끝까지 차지 않았다
    assert browser.evaluate("document.querySelector('#start').disabled") is False  # 다시 요청할 수 있다
    assert app.backend.get_task_meta(report_id)["status"] == "REVOKED"
    worker.wait_for_log(rf"Terminating {report_id} \(15\)", WAIT_SECONDS)
    assert browser.console_errors() == []
