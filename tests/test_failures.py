"""무엇이 빠졌을 때 call_tasks 가 멈추지 않고, 무엇을 켜야 하는지 말하고, 0이 아닌 코드로 끝나는지 본다."""

from __future__ import annotations

import re
import signal
import sys
import time

import pytest
from celery.result import AsyncResult

from course import needs_of
from playground.lessons import (
    available_lessons,
    broker_service,
    purge,
    result_backend_service,
    run_call_tasks,
    service_down_env,
    worker_on_empty_queue,
)
from playground.readme import inline_code, readme
from playground.workers import Worker
from tests.readme import parse

# 멈춤을 잡는 상한(시간 주장이 아니다). 데이터베이스 백엔드의 get(timeout=10) 은 sleep 한 시간만 세므로
# 10초보다 길게 걸린다(practice00 README), 바쁜 기계에서는 더.
BOUND_SECONDS = 45
# 워커가 없을 때의 안내를 보는 테스트는 결과를 1초만 기다린다(course.WAIT_SECONDS 를 바꾸는 환경 변수).
NO_WORKER_WAIT = {"PLAYGROUND_WAIT_SECONDS": "1"}
# 워커를 멈추는 것이 주제인 실습(practice13, practice14)은 call_tasks 가 워커를 직접 띄운다. 띄울 워커가 없다.
LESSONS_WITH_LEARNER_WORKERS = [lesson for lesson in available_lessons() if not needs_of(lesson).starts_workers]


@pytest.mark.parametrize("lesson", LESSONS_WITH_LEARNER_WORKERS)
def test_call_tasks_without_a_worker_exits_nonzero_and_says_what_to_start(lesson):
    purge(lesson)
    try:
        run = run_call_tasks(lesson, timeout=BOUND_SECONDS, env=NO_WORKER_WAIT)
    finally:
        purge(lesson)  # 보내 놓은 메시지가 다음 테스트의 워커에게 가지 않게
    assert "did not finish within" not in run.output, run.output
    assert run.returncode != 0
    running = "워커와 웹 서버가" if needs_of(lesson).web else "워커가"  # 웹 서버도 띄우는 실습(practice16)
    assert f"{lesson} {running} 실행 중인가요?\n다른 터미널에서 띄우세요:" in run.output, run.output
    for command in needs_of(lesson).commands(lesson):  # lesson.py 가 적어 둔 워커 명령 그대로
        assert f"\n    {command}\n" in run.output, run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize("lesson", available_lessons())
def test_call_tasks_with_the_broker_down_names_rabbitmq(lesson):
    run = run_call_tasks(lesson, timeout=BOUND_SECONDS, env=service_down_env(broker_service(lesson)))
    assert "did not finish within" not in run.output, run.output
    assert run.returncode != 0
    assert "RabbitMQ에 연결할 수 없습니다: amqp://localhost:1/" in run.output
    assert "docker compose up -d rabbitmq" in run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize("lesson", available_lessons())
def test_call_tasks_with_the_result_backend_down_names_it(lesson):
    service = result_backend_service(lesson)
    env, name, compose = service_down_env(service), service.name, service.compose_service
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

    # docs/runner 의 명령 그대로: PLAYGROUND_WAIT_SECONDS=1 uv run python -m practice00.call_tasks
    (written,) = [c for c in inline_code(readme("docs/runner.md")) if c.startswith("PLAYGROUND_WAIT_SECONDS=")]
    command = parse(written.replace(" uv run ", " "))
    assert command.argv == [sys.executable, "-m", "practice00.call_tasks"] and command.env == NO_WORKER_WAIT
    purge("practice00")
    run = run_call_tasks("practice00", timeout=BOUND_SECONDS, env=command.env)
    assert run.returncode != 0
    assert "기다리던 결과가 오지 않았습니다(최대 1초). practice00 워커가 실행 중인가요?" in run.output
    task_id = re.search(r"add\.delay\(2, 3\) → <AsyncResult: (\S+)>", run.output).group(1)
    assert AsyncResult(task_id, app=app).state == "PENDING"
    with worker_on_empty_queue("practice00", purge_first=False):
        assert AsyncResult(task_id, app=app).get(timeout=BOUND_SECONDS) == 5


def _worker_running_a_slow_task(seconds):
    from practice00.tasks import slow_add

    purge("practice00")
    worker = Worker("practice00").start()
    worker.wait_ready()
    result = slow_add.delay(1, 1, seconds=seconds)
    worker.wait_for_log(rf"{result.id}\] received", BOUND_SECONDS)
    time.sleep(0.3)  # 쉬는 풀 프로세스가 곧바로 실행하기 시작했다
    return worker, result


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_is_a_warm_shutdown_the_running_task_finishes_first(sig):
    # README: Ctrl-C(SIGINT) 한 번은 warm shutdown이고, SIGTERM도 같다.
    worker, result = _worker_running_a_slow_task(seconds=2)
    try:
        worker.proc.send_signal(sig)
        worker.proc.wait(BOUND_SECONDS)
    finally:
        worker.stop()
    assert "Warm shutdown" in worker.log
    assert result.get(timeout=BOUND_SECONDS) == 2
    assert result.state == "SUCCESS"


def test_cold_shutdown_cancels_the_running_task_and_without_acks_late_it_is_gone():
    worker, result = _worker_running_a_slow_task(seconds=3)
    try:
        worker.proc.send_signal(signal.SIGQUIT)  # kill -QUIT <워커 pid>: cold shutdown
        worker.proc.wait(BOUND_SECONDS)
    finally:
        worker.stop()
    assert "Cold shutdown" in worker.log
    assert f"{result.id}] succeeded" not in worker.log
    assert result.state == "RETRY"  # 취소되며 RETRY로 적히지만 다시 보내지지는 않는다
    with worker_on_empty_queue("practice00", purge_first=False) as again:
        time.sleep(3.5)  # 다시 배달되었다면 이 안에 실행되어 끝났을 것이다
        assert result.id not in again.log
    assert result.state == "RETRY"
