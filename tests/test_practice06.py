"""practice06 README 절: 명시한 이름과 만들어진 이름, send_task, 틀린 이름, celery inspect/call."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
from celery import Celery
from celery.exceptions import NotRegistered
from celery.exceptions import TimeoutError as CeleryTimeoutError
from kombu import Connection

import global_config
from course import never_within
from playground import PROJECT_ROOT, broker
from playground.broker import delete_queue, queue_counts
from practice06.tasks import QUEUE, app, count_words, send_welcome
from tests import WAIT_SECONDS

# README: 틀린 이름이면 get() 이 "곧바로" NotRegistered를 던진다. 워커가 거절하고 결과를 적는 데 드는 시간의 상한.
NOT_REGISTERED_WITHIN_SECONDS = 2.0
# 거절된 메시지가 큐로 돌아갔다면 다시 배달되었을 시간. 그동안 같은 id가 로그에 또 나오지 않아야 한다.
REDELIVERY_SECONDS = 1


LESSON = "practice06"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)


@pytest.fixture(scope="module")
def client():
    """tasks.py 를 모르는 클라이언트 앱: 같은 브로커와 백엔드와 큐."""
    client = Celery("test_client", broker=global_config.RABBITMQ_URL, backend=global_config.REDIS_URL)
    client.conf.update(task_default_queue=QUEUE, accept_content=["json"])
    return client


def test_names_explicit_and_generated():
    assert send_welcome.name == "email.send_welcome"
    assert count_words.name == "practice06.tasks.count_words"
    assert {"email.send_welcome", "practice06.tasks.count_words"} <= set(app.tasks)


def test_send_task_reaches_a_task_by_name(worker, client):
    assert (
        client.send_task("email.send_welcome", args=[42]).get(timeout=WAIT_SECONDS)
        == "환영 메일을 보냈습니다 (사용자 42)"
    )
    assert client.send_task("practice06.tasks.count_words", args=["a b c"]).get(timeout=WAIT_SECONDS) == 3


def test_the_caller_imports_no_tasks_module():
    tree = ast.parse((PROJECT_ROOT / "practice06" / "call_tasks.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not [name for name in imported if name and name.endswith("tasks")]
    code = "import sys, practice06.call_tasks; print(sorted(m for m in sys.modules if m.startswith('practice')))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)
    assert loaded.stdout.strip() == "['practice06', 'practice06.call_tasks']", loaded.stderr


def test_a_wrong_name_is_rejected_by_the_worker_as_not_registered(worker, client):
    started = time.monotonic()
    result = client.send_task("email.send_welcom", args=[42])
    with pytest.raises(NotRegistered, match=r"email\.send_welcom"):  # 시간이 다 되면 TimeoutError 였을 것이다
        result.get(timeout=WAIT_SECONDS)
    assert time.monotonic() - started < NOT_REGISTERED_WITHIN_SECONDS  # WAIT_SECONDS를 다 기다리지 않고 곧바로
    assert result.state == "FAILURE"
    worker.wait_for_log(r"Received unregistered task of type 'email\.send_welcom'", WAIT_SECONDS)


def test_with_no_worker_on_the_queue_a_wrong_name_stays_pending(client):
    lonely = Celery("lonely", broker=global_config.RABBITMQ_URL, backend=global_config.REDIS_URL)
    lonely.conf.task_default_queue = "practice06_nobody"
    result = lonely.send_task("email.send_welcom", args=[42])
    try:
        with pytest.raises(CeleryTimeoutError):
            result.get(timeout=1)
        assert result.state == "PENDING"
        assert queue_counts("practice06_nobody") == (1, 0)  # 메시지는 큐에서 기다린다. 거절해 줄 소비자가 없다
    finally:
        lonely.backend.remove_pending_result(result)
        delete_queue("practice06_nobody")


def test_celery_inspect_registered_lists_the_names(worker):
    out = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "practice06.tasks", "inspect", "registered", "-d", worker.node],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    assert "* email.send_welcome" in out
    assert "* practice06.tasks.count_words" in out


def test_celery_call_reaches_the_task_by_name(worker):
    out = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "practice06.tasks", "call", "email.send_welcome", "--args=[42]"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    assert re.fullmatch(r"[0-9a-f-]{36}", out)
    assert app.AsyncResult(out).get(timeout=WAIT_SECONDS) == "환영 메일을 보냈습니다 (사용자 42)"


def test_a_generated_name_follows_the_import_path_an_explicit_one_does_not():
    # practice06/tasks.py 를 패키지 밖에서 "tasks" 라는 모듈로 import 하면 만들어진 이름이 바뀐다.
    code = "import sys; sys.path.insert(1, '..'); import tasks; print(tasks.count_words.name, tasks.send_welcome.name)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT / "practice06", capture_output=True, text=True, timeout=30
    )
    assert out.stdout.split() == ["tasks.count_words", "email.send_welcome"], out.stderr


def test_moving_or_renaming_the_function_changes_a_generated_name_but_not_an_explicit_one(tmp_path):
    # tasks.py 를 다른 패키지의 다른 모듈(mailing/jobs.py)로 옮기고 두 함수의 이름도 바꾼 사본을 import 한다.
    source = (PROJECT_ROOT / "practice06" / "tasks.py").read_text()
    moved = source.replace("def count_words(", "def count_all_words(").replace("def send_welcome(", "def welcome(")
    assert moved.count("def count_all_words(") == moved.count("def welcome(") == 1
    (tmp_path / "mailing").mkdir()
    (tmp_path / "mailing" / "__init__.py").write_text("")
    (tmp_path / "mailing" / "jobs.py").write_text(moved)
    code = "import mailing.jobs as jobs; print(jobs.count_all_words.name, jobs.welcome.name)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.stdout.split() == ["mailing.jobs.count_all_words", "email.send_welcome"], out.stderr


def test_the_callers_client_has_the_workers_broker_backend_queue_and_serialisation():
    from practice06 import call_tasks

    for key in (
        "broker_url", "result_backend", "task_default_queue",
        "task_serializer", "result_serializer", "accept_content", "result_accept_content",
    ):  # fmt: skip
        assert call_tasks.client.conf[key] == app.conf[key], key


def test_a_json_message_published_over_http_runs_the_task(worker):
    """파이썬이 아니어도 된다: 관리 API의 HTTP 요청 하나(curl 로도 보낼 수 있는 JSON)로 메시지를 큐에 넣는다."""
    task_id = str(uuid.uuid4())
    body = [[9], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    published = broker.management(
        "POST",
        f"exchanges/{broker.quoted(broker.vhost())}/amq.default/publish",
        {
            "properties": {
                "content_type": "application/json",
                "content_encoding": "utf-8",
                "headers": {"lang": "py", "task": "email.send_welcome", "id": task_id},
            },
            "routing_key": QUEUE,
            "payload": json.dumps(body),
            "payload_encoding": "string",
        },
    )
    assert published == {"routed": True}
    assert app.AsyncResult(task_id).get(timeout=WAIT_SECONDS) == "환영 메일을 보냈습니다 (사용자 9)"


def test_a_plain_json_message_without_celery_on_the_sending_side_runs_the_task(worker):
    """파이썬 Celery 없이도: Celery 메시지 형식(프로토콜 2)의 JSON을 큐에 넣으면 워커가 실행한다."""
    task_id = str(uuid.uuid4())
    body = [[7], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    with Connection(global_config.RABBITMQ_URL) as conn:
        conn.Producer(serializer="json").publish(
            body, routing_key=QUEUE, headers={"lang": "py", "task": "email.send_welcome", "id": task_id}
        )
    assert app.AsyncResult(task_id).get(timeout=WAIT_SECONDS) == "환영 메일을 보냈습니다 (사용자 7)"


def test_an_unregistered_message_is_dropped_not_requeued(worker, client):
    result = client.send_task("email.send_welcom", args=[1])
    with pytest.raises(NotRegistered):
        result.get(timeout=WAIT_SECONDS)
    worker.wait_for_log(r"Received unregistered task of type 'email\.send_welcom'", WAIT_SECONDS)
    time.sleep(0.2)  # 그 메시지에 대한 로그가 다 찍히도록
    mentions = worker.log.count(result.id)
    # 다시 배달되었다면 같은 id가 또 찍혔을 것이다
    never_within(REDELIVERY_SECONDS, lambda: worker.log.count(result.id) > mentions, "거절된 메시지의 재배달")
