"""README 'Flower' 절: README의 명령 그대로 띄운 Flower가 떠 있는 워커와 그 워커의 작업을 HTTP API로 보여 준다."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from course import wait_until
from playground import PROJECT_ROOT, broker
from practice00.tasks import add
from tests.readme import command_starting, commands, parse, readme

FLOWER_READY_SECONDS = 30
EVENT_WAIT_SECONDS = 10
README = readme("docs/flower.md")


class Flower:
    """README의 명령으로 띄운 Flower 프로세스 하나. 로그는 파일에 모은다."""

    def __init__(self, command: str, *, port: int | None = None, drop_env: tuple[str, ...] = ()) -> None:
        parsed = parse(command)
        argv = parsed.argv
        if port is not None:
            argv = [f"--port={port}" if arg.startswith("--port=") else arg for arg in argv]
        self.port = int(next(arg for arg in argv if arg.startswith("--port=")).split("=", 1)[1])
        env = {**os.environ, **parsed.env}
        for name in drop_env:
            env.pop(name, None)
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 — stop() 이 닫는다
        self.proc = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_listening(self) -> None:
        def listening() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"Flower exited with {self.proc.returncode}:\n{self.output()}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
            return False

        wait_until(listening, f"Flower가 포트 {self.port}에서 듣기 시작함", FLOWER_READY_SECONDS)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@contextmanager
def flower_running(**options) -> Iterator[Flower]:
    flower = Flower(command_starting(README, "celery -A practice00.tasks flower"), **options)
    try:
        flower.wait_listening()
        yield flower
    finally:
        flower.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def poll_json(flower: Flower, path: str, until, seconds: float = EVENT_WAIT_SECONDS):
    """path의 JSON이 until(data) 를 만족할 때까지 다시 읽는다. 만족한 data를 돌려준다."""

    def shown():
        status, body = flower.get(path)
        data = json.loads(body) if status == 200 else None
        return data if data is not None and until(data) else None

    return wait_until(shown, f"Flower의 {path} 응답", seconds)


def _readme_worker_options() -> list[str]:
    """README Flower 절의 워커 명령에서 --loglevel 을 뺀 옵션들(-E 가 있어야 Flower가 이벤트를 받는다)."""
    readme_worker = parse(command_starting(README, "celery -A practice00.tasks worker --loglevel=info -E"))
    extra = [arg for arg in readme_worker.argv[readme_worker.argv.index("worker") + 1 :] if "loglevel" not in arg]
    assert "-E" in extra
    return extra


LESSON = "practice00"
# 모듈의 테스트가 README의 -E 워커 하나(conftest.py 의 worker)와 Flower 하나를 함께 쓴다.
pytestmark = pytest.mark.xdist_group("flower")
WORKER_OPTIONS = {"extra_args": _readme_worker_options()}


def wait_until_flower_hears(flower: Flower, worker) -> None:
    """Flower가 그 워커의 이벤트(하트비트)를 받기 시작할 때까지 기다린다. 포트가 열린 것만으로는 모자란다:
    이벤트를 받을 연결은 그 뒤에 맺어지고, 그 전에 난 이벤트는 Flower에 오지 않는다."""
    poll_json(flower, "/api/workers?status=1", lambda data: data.get(worker.node) is True)


@pytest.fixture(scope="module")
def flower(worker):
    with flower_running(port=free_port()) as flower:
        wait_until_flower_hears(flower, worker)
        yield flower


def test_readme_flower_command_listens_only_on_this_machine_at_5555():
    command = command_starting(README, "celery -A practice00.tasks flower")
    assert "--address=127.0.0.1" in command
    assert "--port=5555" in command


def readme_curl_path(part: str) -> str:
    """README의 curl 명령 중 part가 든 것의 경로 (http://127.0.0.1:5555 뒤)."""
    urls = [c.removeprefix("curl ").strip('"') for c in commands(README) if c.startswith("curl ") and part in c]
    assert len(urls) == 1, urls
    assert urls[0].startswith("http://127.0.0.1:5555/")
    return urls[0].removeprefix("http://127.0.0.1:5555")


def test_flower_lists_the_running_worker_with_its_registered_tasks(worker):
    with flower_running(port=free_port()) as flower:
        # Flower는 켜질 때 워커들에게 한 번 물어 둔다: 그때 떠 있던 워커는 refresh=1 없이도 나온다.
        poll_json(flower, "/api/workers", lambda data: worker.node in data)
        # refresh=1 은 지금 다시 묻는다: 등록된 작업과 소비하는 큐. 바쁜 기계에서는 한 항목의 답이 Flower의 inspect
        # 제한 시간(1초)을 넘겨 빠질 수 있으므로, 둘이 다 온 답이 나올 때까지 다시 묻는다.
        wanted = {"registered", "active_queues"}
        workers = poll_json(
            flower, readme_curl_path("/api/workers"), lambda data: wanted <= set(data.get(worker.node, {}))
        )
        assert "practice00.tasks.add" in workers[worker.node]["registered"]
        assert "practice00" in [queue["name"] for queue in workers[worker.node]["active_queues"]]


def test_flower_shows_a_task_from_the_workers_events(flower, worker):
    result = add.delay(2, 3)
    assert result.get(timeout=EVENT_WAIT_SECONDS, interval=0.1) == 5
    path = readme_curl_path("/api/task/info/").replace("<task id>", result.id)
    info = poll_json(flower, path, lambda data: data.get("state") == "SUCCESS")
    assert info["name"] == "practice00.tasks.add"
    assert info["worker"] == worker.node
    assert info["result"] == "5"
    # 받음, 시작, 성공: 워커가 보낸 이벤트마다 시각이 적혀 있다.
    assert info["received"] <= info["started"] <= info["succeeded"]


def test_flower_shows_a_failed_task_from_the_failure_event(flower, worker):
    from practice00.tasks import divide

    result = divide.delay(1, 0)
    assert isinstance(result.get(timeout=EVENT_WAIT_SECONDS, interval=0.1, propagate=False), ZeroDivisionError)
    info = poll_json(flower, f"/api/task/info/{result.id}", lambda data: data.get("state") == "FAILURE")
    assert info["failed"] is not None
    assert "ZeroDivisionError" in info["exception"]


def test_the_web_pages_show_the_worker_and_the_task(flower, worker):
    result = add.delay(3, 4)
    assert result.get(timeout=EVENT_WAIT_SECONDS, interval=0.1) == 7
    status, page = flower.get("/workers")  # Workers 화면 (서버가 그린 HTML)
    assert status == 200 and worker.node.encode() in page
    # Tasks 화면은 이 주소에서 표의 행을 받아 그린다.
    table = "/tasks/datatable?draw=1&start=0&length=100&search%5Bvalue%5D=&order%5B0%5D%5Bcolumn%5D=0"
    rows = poll_json(flower, table, lambda data: any(row["uuid"] == result.id for row in data["data"]))
    row = next(row for row in rows["data"] if row["uuid"] == result.id)
    assert (row["name"], row["state"], row["result"], row["worker"]) == (
        "practice00.tasks.add",
        "SUCCESS",
        "7",
        worker.node,
    )


def test_flower_does_not_know_tasks_that_ran_before_it_started(worker):
    earlier = add.delay(1, 1)
    assert earlier.get(timeout=EVENT_WAIT_SECONDS, interval=0.1) == 2
    with flower_running(port=free_port()) as flower:
        wait_until_flower_hears(flower, worker)
        later = add.delay(2, 2)
        assert later.get(timeout=EVENT_WAIT_SECONDS, interval=0.1) == 4
        poll_json(flower, f"/api/task/info/{later.id}", lambda data: data.get("state") == "SUCCESS")
        status, _ = flower.get(f"/api/task/info/{earlier.id}")
        assert status == 404


def test_without_the_env_var_the_api_is_refused_but_the_web_page_opens(worker):
    with flower_running(port=free_port(), drop_env=("FLOWER_UNAUTHENTICATED_API",)) as flower:
        status, body = flower.get("/api/workers")
        assert status == 401
        assert b"FLOWER_UNAUTHENTICATED_API" in body
        page_status, _ = flower.get("/")
        assert page_status == 200


@pytest.mark.skipif("broker.server_major() < 4", reason="kombu 5.7 declares these queues for RabbitMQ 4.x")
def test_no_queue_the_worker_and_flower_declare_is_transient_and_non_exclusive(flower, worker):
    # README의 서비스 절: Celery 5.7은 원격 제어와 이벤트 큐를 exclusive로 선언한다. durable도 exclusive도
    # 아닌 큐는 RabbitMQ 4.3이 아직 허용하지만 없어질 기능이다(test_services 가 deprecated-features 로 본다).
    wait_until_flower_hears(flower, worker)
    queues = broker.queues()
    names = [queue["name"] for queue in queues]
    assert "practice00" in names  # 작업 큐
    assert f"{worker.node}.celery.pidbox" in names  # 워커의 원격 제어 큐
    assert any(name.startswith("celeryev.") for name in names)  # Flower가 이벤트를 받는 큐
    transient = [queue["name"] for queue in queues if not queue["durable"] and not queue["exclusive"]]
    assert transient == []
    control = next(queue for queue in queues if queue["name"] == f"{worker.node}.celery.pidbox")
    assert control["exclusive"] is True
    assert all(queue["exclusive"] for queue in queues if queue["name"].startswith("celeryev."))
    assert next(queue for queue in queues if queue["name"] == "practice00")["durable"] is True
