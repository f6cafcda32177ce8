"""무엇이 빠졌을 때 call_tasks 가 멈추지 않고, 무엇을 켜야 하는지 말하고, 0이 아닌 코드로 끝나는지 본다."""

from __future__ import annotations

import re

import pytest
from celery.result import AsyncResult

from playground.lessons import available_lessons, lesson_app, purge, run_call_tasks, worker_on_empty_queue

BOUND_SECONDS = 20


@pytest.mark.parametrize("lesson", available_lessons())
def test_call_tasks_without_a_worker_exits_nonzero_and_says_what_to_start(lesson):
    purge(lesson)
    try:
        run = run_call_tasks(lesson, timeout=BOUND_SECONDS)
    finally:
        purge(lesson)  # 보내 놓은 메시지가 다음 테스트의 워커에게 가지 않게
    assert "did not finish within" not in run.output, run.output
    assert run.returncode != 0
    assert re.search(rf"^    celery -A {lesson}\.tasks worker .*--loglevel=info$", run.output, re.MULTILINE), run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize("lesson", available_lessons())
def test_call_tasks_with_the_broker_down_names_rabbitmq(lesson):
    run = run_call_tasks(lesson, timeout=BOUND_SECONDS, env={"RABBITMQ_URL": "amqp://localhost:1"})
    assert "did not finish within" not in run.output, run.output
    assert run.returncode != 0
    assert "RabbitMQ에 연결할 수 없습니다: amqp://localhost:1/" in run.output
    assert "docker compose up -d rabbitmq" in run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize("lesson", available_lessons())
def test_call_tasks_with_the_result_backend_down_names_it(lesson):
    if lesson_app(lesson).conf.result_backend.startswith("db+"):
        env = {"POSTGRES_URL": "db+postgresql+psycopg2://postgres:postgres@localhost:1/celery_jobs"}
        name, compose = "PostgreSQL", "postgres"
    else:
        env, name, compose = {"REDIS_URL": "redis://localhost:1"}, "Redis", "redis"
    purge(lesson)
    try:
        run = run_call_tasks(lesson, timeout=BOUND_SECONDS, env=env)
    finally:
        purge(lesson)
    assert "did not finish within" not in run.output, run.output
    assert run.returncode != 0
    assert f"{name}에 연결할 수 없습니다: " in run.output and "localhost:1" in run.output
    assert f"docker compose up -d {compose}" in run.output
    assert "Traceback" not in run.output


def test_a_task_sent_while_no_worker_runs_is_run_by_a_worker_started_later():
    from practice00.tasks import app

    purge("practice00")
    run = run_call_tasks("practice00", timeout=BOUND_SECONDS)
    assert run.returncode != 0
    task_id = re.search(r"add\.delay\(2, 3\)\s+→ AsyncResult id=(\S+)", run.output).group(1)
    assert AsyncResult(task_id, app=app).state == "PENDING"
    with worker_on_empty_queue("practice00", purge_first=False):
        assert AsyncResult(task_id, app=app).get(timeout=BOUND_SECONDS) == 5
