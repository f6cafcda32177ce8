"""practice00 README 절의 주장 하나하나를 실제 워커와 PostgreSQL 결과 백엔드로 확인한다."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

import global_config
from playground import PROJECT_ROOT
from playground.services import sqlalchemy_url
from practice00.call_tasks import POLL_INTERVAL_SECONDS
from practice00.tasks import COUNTDOWN_SECONDS, WORK_SECONDS, add, app, divide, slow_add
from tests import WAIT_SECONDS
from tests.readme import command_starting, parse, readme

QUICK_TASK_SECONDS = 0.2  # 결과가 저장되는 시각: 기본 간격(0.5초)보다 이르다
INTERVAL_ROUNDS = 3  # 간격마다 몇 번 재어 가운데 값을 비교한다


LESSON = "practice00"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)


def test_delay_sends_the_task_and_get_returns_its_value(worker):
    result = add.delay(2, 3)
    assert isinstance(result, AsyncResult)
    assert result.get(timeout=WAIT_SECONDS) == 5


def test_delay_is_apply_async_with_positional_args(worker):
    assert add.apply_async(args=(2, 3)).get(timeout=WAIT_SECONDS) == add.delay(2, 3).get(timeout=WAIT_SECONDS) == 5
    assert add.apply_async(kwargs={"x": 4, "y": 5}).get(timeout=WAIT_SECONDS) == add.delay(x=4, y=5).get(
        timeout=WAIT_SECONDS
    )


def test_execution_options_given_to_delay_become_task_arguments(worker):
    with pytest.raises(TypeError, match="countdown"):
        add.delay(2, 3, countdown=COUNTDOWN_SECONDS)


@pytest.mark.parametrize("option", ["countdown", "queue", "task_id"])
def test_execution_options_go_to_apply_async_not_to_delay(worker, option):
    value = {"countdown": 0, "queue": "practice00", "task_id": f"fixed-{uuid.uuid4()}"}[option]
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{option}'"):
        add.delay(2, 3, **{option: value})
    result = add.apply_async(args=(2, 3), **{option: value})
    assert result.get(timeout=WAIT_SECONDS) == 5
    if option == "task_id":
        assert result.id == value  # apply_async 는 옵션으로 받았다


def test_countdown_means_not_before_n_seconds(worker):
    sent_at = datetime.now(UTC)
    result = add.apply_async(args=(4, 5), countdown=COUNTDOWN_SECONDS)
    assert result.ready() is False
    assert result.state == "PENDING"
    assert result.get(timeout=WAIT_SECONDS + COUNTDOWN_SECONDS) == 9
    ran_after = (result.date_done.replace(tzinfo=UTC) - sent_at).total_seconds()
    assert ran_after >= COUNTDOWN_SECONDS


def test_worker_receives_a_countdown_task_at_once_and_holds_it(worker):
    sent = time.time()
    result = add.apply_async(args=(1, 1), countdown=COUNTDOWN_SECONDS)
    result.get(timeout=WAIT_SECONDS + COUNTDOWN_SECONDS)
    received = _log_time(worker, rf"{result.id}\] received")
    succeeded = _log_time(worker, rf"{result.id}\] succeeded")
    assert received < sent + COUNTDOWN_SECONDS  # 예정 시각보다 먼저 받아서 들고 있었다
    assert succeeded >= sent + COUNTDOWN_SECONDS - 0.05  # 예정 시각 전에는 실행하지 않았다(로그 시각은 ms 단위)


def test_countdown_runs_later_still_when_every_pool_process_is_busy(worker):
    busy = [slow_add.delay(0, 0, seconds=1.5) for _ in range(worker.concurrency)]
    sent_at = datetime.now(UTC)
    late = add.apply_async(args=(1, 1), countdown=0.5)
    assert late.get(timeout=WAIT_SECONDS) == 2
    assert [b.get(timeout=WAIT_SECONDS) for b in busy] == [0] * worker.concurrency
    ran_after = (late.date_done.replace(tzinfo=UTC) - sent_at).total_seconds()
    assert ran_after >= 1.4  # countdown 0.5초가 아니라, 바쁜 작업이 끝난 1.5초 무렵


def test_a_task_being_executed_is_still_pending(worker, results_db):
    result = slow_add.delay(1, 1, seconds=2)
    worker.wait_for_log(rf"{result.id}\] received", timeout=WAIT_SECONDS)
    time.sleep(0.5)  # 쉬는 풀 프로세스가 있으니 받자마자 실행 중이다
    assert f"{result.id}] succeeded" not in worker.log
    assert (result.state, result.ready()) == ("PENDING", False)
    assert _rows(results_db, result.id) == []  # 시작했다는 기록이 없다: PENDING은 "행이 없다"는 뜻이다
    assert result.get(timeout=WAIT_SECONDS) == 2


def test_a_running_task_is_not_ready_and_a_finished_one_is_successful(worker):
    result = slow_add.delay(1, 1)
    assert (result.ready(), result.state) == (False, "PENDING")
    assert result.get(timeout=WAIT_SECONDS + WORK_SECONDS) == 2
    assert (result.ready(), result.successful(), result.failed(), result.state) == (True, True, False, "SUCCESS")


def test_a_failing_task_is_stored_as_failure_with_its_traceback(worker):
    result = divide.delay(1, 0)
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert isinstance(error, ZeroDivisionError)
    assert str(error) == "division by zero"
    assert (result.ready(), result.successful(), result.failed(), result.state) == (True, False, True, "FAILURE")
    assert isinstance(result.result, ZeroDivisionError)
    assert result.traceback.startswith("Traceback (most recent call last):")
    assert "in divide" in result.traceback
    assert result.traceback.strip().splitlines()[-1] == "ZeroDivisionError: division by zero"


def test_get_re_raises_the_tasks_exception_in_the_caller(worker):
    result = divide.delay(1, 0)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        result.get(timeout=WAIT_SECONDS)


def test_an_unknown_id_is_pending_just_like_a_waiting_task(worker):
    unknown = AsyncResult(str(uuid.uuid4()), app=app)
    waiting = add.apply_async(args=(1, 2), countdown=COUNTDOWN_SECONDS)
    assert unknown.state == waiting.state == "PENDING"
    assert unknown.ready() is waiting.ready() is False
    waiting.get(timeout=WAIT_SECONDS + COUNTDOWN_SECONDS)


def test_get_with_a_timeout_raises_celery_timeout_error():
    unknown = AsyncResult(str(uuid.uuid4()), app=app)
    started = time.monotonic()
    with pytest.raises(CeleryTimeoutError):
        unknown.get(timeout=1)
    assert time.monotonic() - started >= 1


def test_get_timeout_does_not_cancel_the_task(worker):
    result = slow_add.delay(1, 1)
    with pytest.raises(CeleryTimeoutError):
        result.get(timeout=0.1)
    assert result.get(timeout=WAIT_SECONDS + WORK_SECONDS) == 2
    worker.wait_for_log(rf"{result.id}\] succeeded", WAIT_SECONDS)


def test_get_without_a_timeout_keeps_waiting():
    code = (
        "import uuid\nfrom practice00.tasks import app\napp.AsyncResult(str(uuid.uuid4())).get()\nprint('returned')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=3)  # '영원히'를 대신해 3초: 그동안 돌아오면 실패
    finally:
        proc.kill()
        out, _ = proc.communicate()
    assert "returned" not in out


# 첫 조회가 곧바로 끝나야 0.2초 작업이 아직 PENDING으로 보인다. 코어 둘이 바쁘면 첫 조회(연결 + SELECT)가
# 0.3초 걸려 그 사이 작업이 끝나 버린다(CI에서 0.298초에 돌려받았다): 혼자 잰다.
@pytest.mark.alone
def test_database_backend_get_polls_every_half_second(worker):
    # 0.2초짜리 작업: 첫 조회(거의 즉시)에는 아직 PENDING, 다음 조회는 0.5초 뒤다.
    # 그래서 결과는 0.2초쯤 DB에 들어가 있지만 get() 은 0.5초가 지나서야 돌려준다.
    sent_at = datetime.now(UTC)
    result = slow_add.delay(1, 1, seconds=0.2)
    assert result.get(timeout=WAIT_SECONDS) == 2
    returned_after = (datetime.now(UTC) - sent_at).total_seconds()
    stored_after = (result.date_done.replace(tzinfo=UTC) - sent_at).total_seconds()
    assert returned_after >= 0.5
    assert stored_after < returned_after - 0.1


# 조회 횟수는 조회 하나가 걸리는 시간에 달려 있다. 바쁜 기계에서는 조회가 느려 interval=0.1 의 횟수가 줄어든다
# (CI에서 5번 대 3번): 혼자 잰다.
@pytest.mark.alone
def test_get_interval_sets_how_often_the_database_backend_reads_the_table(worker):
    def reads_during_get(**options):
        reads = []

        def count(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("SELECT") and "celery_taskmeta" in statement:
                reads.append(statement)

        result = slow_add.delay(1, 1, seconds=1.0)
        event.listen(Engine, "before_cursor_execute", count)
        try:
            assert result.get(timeout=WAIT_SECONDS, **options) == 2
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        return len(reads)

    default = reads_during_get()  # 1초 작업: 0, 0.5, 1.0 … 초에 읽는다
    frequent = reads_during_get(interval=0.1)
    assert default >= 2
    assert frequent >= 2 * default


# 결과가 0.2초에 저장되는 작업을 기본 간격(0.5초)과 0.1초 간격으로 기다린다. 기본 간격은 0.5초 뒤의 두 번째 조회에서야,
# 0.1초 간격은 0.3초 무렵에 돌려준다. 코어 둘이 바쁘면 조회 하나가 0.3초까지 걸려 차이가 묻힌다: 혼자 잰다.
@pytest.mark.alone
def test_a_shorter_interval_returns_the_result_sooner(worker):
    def returned_after(**options):
        sent = time.monotonic()
        result = slow_add.delay(1, 1, seconds=QUICK_TASK_SECONDS)
        assert result.get(timeout=WAIT_SECONDS, **options) == 2
        return time.monotonic() - sent

    def median(**options):
        return sorted(returned_after(**options) for _ in range(INTERVAL_ROUNDS))[INTERVAL_ROUNDS // 2]

    default, frequent = median(), median(interval=POLL_INTERVAL_SECONDS)
    assert frequent < default, (frequent, default)


def test_each_read_of_get_opens_a_new_database_connection():
    # 호출하는 쪽(포크하지 않은 프로세스)의 데이터베이스 백엔드는 조회마다 NullPool 엔진을 새로 만든다
    # (celery/backends/database/session.py). 그래서 조회 수만큼 연결이 새로 열린다.
    reads, connections = [], []

    def read(conn, cursor, statement, *args):
        if "celery_taskmeta" in statement:
            reads.append(statement)

    def connected(dbapi_connection, record):
        connections.append(dbapi_connection)

    never = AsyncResult(f"never-{uuid.uuid4()}", app=app)
    event.listen(Engine, "before_cursor_execute", read)
    event.listen(Pool, "connect", connected)
    try:
        with pytest.raises(CeleryTimeoutError):
            never.get(timeout=1, interval=POLL_INTERVAL_SECONDS)
    finally:
        event.remove(Engine, "before_cursor_execute", read)
        event.remove(Pool, "connect", connected)
    assert len(reads) >= 1 / POLL_INTERVAL_SECONDS
    assert len(connections) == len(reads)


def test_call_tasks_gives_every_get_interval_0_1():
    # README: 이 실습의 call_tasks 는 interval=0.1 을 쓴다. call_tasks.py 의 get() 호출을 모두 본다.
    assert POLL_INTERVAL_SECONDS == 0.1
    tree = ast.parse((PROJECT_ROOT / "practice00" / "call_tasks.py").read_text())
    gets = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
    ]
    assert len(gets) >= 5
    for call in gets:
        interval = {keyword.arg: ast.unparse(keyword.value) for keyword in call.keywords}.get("interval")
        assert interval == "POLL_INTERVAL_SECONDS", ast.unparse(call)


def test_get_timeout_counts_only_the_sleeps_between_reads_not_the_reads():
    # README: 데이터베이스 백엔드의 get(timeout=…) 은 조회 사이에 쉰 시간만 센다. 조회마다 0.1초씩 늦춰 보면
    # (느린 데이터베이스처럼), 기다린 시간은 timeout에 조회 시간들을 더한 만큼이다.
    slow_read, timeout, interval = 0.1, 1.0, 0.1
    reads = []

    def slow(conn, cursor, statement, *args):
        if "celery_taskmeta" in statement:
            reads.append(statement)
            time.sleep(slow_read)

    never = AsyncResult(f"never-{uuid.uuid4()}", app=app)
    event.listen(Engine, "before_cursor_execute", slow)
    started = time.monotonic()
    try:
        with pytest.raises(CeleryTimeoutError):
            never.get(timeout=timeout, interval=interval)
    finally:
        waited = time.monotonic() - started
        event.remove(Engine, "before_cursor_execute", slow)
    assert len(reads) >= timeout / interval  # 쉴 때마다 한 번씩, 처음에 한 번 더
    assert waited >= timeout + slow_read * len(reads)


def test_results_are_rows_in_postgres_celery_taskmeta(worker, results_db):
    ok = add.delay(20, 22)
    bad = divide.delay(1, 0)
    ok.get(timeout=WAIT_SECONDS)
    bad.get(timeout=WAIT_SECONDS, propagate=False)
    rows = {
        row.task_id: row
        for row in results_db.execute(
            sqlalchemy.text("SELECT task_id, status, result, traceback FROM celery_taskmeta WHERE task_id = ANY(:ids)"),
            {"ids": [ok.id, bad.id]},
        )
    }
    assert rows[ok.id].status == "SUCCESS"
    assert bytes(rows[ok.id].result) == b"42"  # JSON으로 저장된다
    assert rows[bad.id].status == "FAILURE"
    assert b'"exc_type": "ZeroDivisionError"' in bytes(rows[bad.id].result)
    assert "ZeroDivisionError: division by zero" in rows[bad.id].traceback


def test_celery_creates_the_result_tables_itself(empty_database, table_names):
    assert table_names(empty_database) == set()
    code = "from practice00.tasks import app; app.backend"
    subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=30,
        env=_env(POSTGRES_URL=empty_database),
    )  # fmt: skip
    assert {"celery_taskmeta", "celery_tasksetmeta"} <= table_names(empty_database)


def test_the_lesson_uses_its_own_queue(worker):
    assert app.conf.task_default_queue == "practice00"
    assert app.amqp.router.route({}, add.name)["queue"].name == "practice00"
    banner_queues = re.findall(r"^\s+\.> (\S+)\s+exchange=", worker.log, re.MULTILINE)
    assert banner_queues == ["practice00"]  # 기본 큐 "celery" 는 소비하지 않는다


def test_the_readme_query_on_celery_taskmeta_runs(worker, results_db):
    query = re.search(r'-c "(SELECT [^"]+ FROM celery_taskmeta[^"]*)"', readme("practice00/README.md")).group(1)
    result = add.delay(20, 22)
    result.get(timeout=WAIT_SECONDS)
    rows = results_db.execute(sqlalchemy.text(query)).mappings().all()
    # 방금 끝난 작업이 맨 위에 온다(끝나지 않은 RETRY 같은 행은 date_done 이 비어 있어 NULLS LAST로 뒤에 간다)
    assert {"task_id": result.id, "status": "SUCCESS", "result": "42"}.items() <= rows[0].items()


def test_the_readme_psql_command_runs_without_docker(worker):
    # 이 기계에는 Docker 엔진이 없다. README 명령에서 `docker compose exec postgres` 를 뺀 psql 명령을 그대로
    # 실행한다. 데이터베이스 이름(celery_jobs)만 이 테스트 프로세스의 데이터베이스로 바꾼다(playground/isolation.py).
    command = parse(command_starting(readme("practice00/README.md"), "docker compose exec postgres psql"))
    assert command.argv[:4] == ["docker", "compose", "exec", "postgres"]
    argv = command.argv[4:]
    assert argv[:4] == ["psql", "-U", "postgres", "celery_jobs"]
    url = sqlalchemy_url(global_config.POSTGRES_URL)
    argv[3] = url.database
    result = add.delay(20, 22)
    result.get(timeout=WAIT_SECONDS)
    env = _env(PGHOST=url.host, PGPORT=str(url.port), PGPASSWORD=url.password)
    psql = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert psql.returncode == 0, psql.stderr
    header, _, first, *_ = psql.stdout.splitlines()
    assert [column.strip() for column in header.split("|")] == ["task_id", "status", "result", "date_done"]
    assert [cell.strip() for cell in first.split("|")][:3] == [result.id, "SUCCESS", "42"]


def _log_time(worker, pattern: str) -> float:
    """워커 로그에서 pattern이 있는 줄의 시각(초). 그 줄이 아직 안 나왔으면 잠깐 기다린다."""
    match = worker.wait_for_log(r"(?m)^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [^\n]*" + pattern, WAIT_SECONDS)
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _env(**overrides: str) -> dict[str, str]:
    return {**os.environ, **overrides}


def _rows(results_db, task_id: str) -> list:
    query = sqlalchemy.text("SELECT status FROM celery_taskmeta WHERE task_id = :id")
    return results_db.execute(query, {"id": task_id}).all()


def test_a_pickle_message_is_refused_and_only_a_timeout_ends_the_wait(worker, results_db):
    result = add.apply_async((1, 2), serializer="pickle")
    worker.wait_for_log(r"Refusing to deserialize untrusted content of type pickle", WAIT_SECONDS)
    with pytest.raises(CeleryTimeoutError):
        result.get(timeout=1)  # 워커는 결과를 남기지 않는다: timeout이 없으면 영원히 기다린다
    assert result.state == "PENDING"
    assert _rows(results_db, result.id) == []
    assert f"{result.id}] received" not in worker.log


def test_json_only_is_celerys_default_and_every_lesson_app_keeps_it():
    import importlib

    from celery import Celery

    from playground.lessons import available_lessons

    json_only = {"task_serializer": "json", "result_serializer": "json", "accept_content": ["json"]}

    def serializers(conf):
        return {**{key: conf[key] for key in json_only}, "accept_content": list(conf["accept_content"])}

    assert serializers(Celery("defaults", set_as_current=False).conf) == json_only
    for lesson in available_lessons():
        assert serializers(importlib.import_module(f"{lesson}.tasks").app.conf) == json_only, lesson
    assert set(json_only) <= set(app.conf.changes)  # practice00은 세 줄을 보이게 적는다
