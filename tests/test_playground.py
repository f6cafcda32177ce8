"""실행기(python -m playground)와 워커 관리가 약속한 대로 움직이는지 확인한다."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from playground import PROJECT_ROOT, processes
from playground.lessons import available_lessons
from playground.runner import EXIT_SERVICES_DOWN, EXIT_USAGE, Console, run_lesson, run_lessons
from playground.workers import Worker, WorkerError

# 실패는 빨라야 한다: 이 안에 끝나지 않으면 멈춘 것으로 본다.
FAIL_FAST_SECONDS = 20


def run_playground(*args: str, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground", *args], cwd=PROJECT_ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_lessons_are_found_by_module_name():
    lessons = available_lessons()
    assert "practice00" in lessons
    assert lessons == sorted(lessons)
    assert all(re.fullmatch(r"practice\d\d", name) for name in lessons)


def test_runner_runs_a_lesson_end_to_end_and_leaves_no_worker_behind():
    run = run_playground("practice00", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    # 워커 로그와 call_tasks 출력이 한 터미널에, 접두사로 구분되어 나온다.
    node = re.search(r"^(worker-[0-9a-f]{6})\s+│ .*\1@\S+ ready\.", out, re.MULTILINE)
    assert node, out
    assert re.search(r"^call_tasks\s+│ 모든 호출이 README에 적힌 대로 동작했습니다\.", out, re.MULTILINE)
    assert re.search(rf"^{node.group(1)}\s+│ .*Task practice00\.tasks\.add\[.*\] succeeded", out, re.MULTILINE)
    assert "━━ practice00: 통과" in out
    assert processes.mentioning(f"--hostname={node.group(1)}@") == []


def test_console_shows_lessons_in_order_whatever_order_their_lines_come_in():
    out = io.StringIO()
    console = Console(stream=out)
    console.plan(["a", "b", "c"])
    console.line("c", "c1")
    console.line("b", "b1")
    console.line("a", "a1")
    console.finish("c", "c done")
    assert out.getvalue().splitlines() == ["━━ a " + "━" * 50, "a1"]  # a만 곧바로, b와 c는 모아 둔다
    console.finish("a", "a done")
    console.line("b", "b2")  # 이제 b가 맨 앞: 곧바로 찍는다
    console.finish("b", "b done")
    console.line("a", "a late")  # 이미 보여 준 실습의 늦은 줄은 곧바로
    assert out.getvalue().splitlines() == [
        "━━ a " + "━" * 50, "a1", "a done",
        "━━ b " + "━" * 50, "b1", "b2", "b done",
        "━━ c " + "━" * 50, "c1", "c done",
        "a late",
    ]  # fmt: skip


def test_runner_rejects_jobs_below_one():
    run = run_playground("all", "--jobs", "0", timeout=FAIL_FAST_SECONDS)
    assert run.returncode == EXIT_USAGE
    assert "--jobs 는 1 이상이어야 합니다" in run.stderr


def test_runner_rejects_an_unknown_lesson():
    run = run_playground("practice99", timeout=FAIL_FAST_SECONDS)
    assert run.returncode == EXIT_USAGE
    assert "없는 실습입니다: practice99." in run.stderr
    assert "practice00" in run.stderr


def test_runner_names_every_unreachable_service_and_how_to_start_it():
    run = run_playground(
        "practice00", timeout=FAIL_FAST_SECONDS,
        RABBITMQ_URL="amqp://localhost:1",
        POSTGRES_URL="db+postgresql+psycopg2://postgres:postgres@localhost:1/celery_jobs",
        REDIS_URL="redis://localhost:1",
    )  # fmt: skip
    assert run.returncode == EXIT_SERVICES_DOWN
    for name, url, compose, env in (
        ("RabbitMQ", "amqp://localhost:1", "rabbitmq", "RABBITMQ_URL"),
        ("PostgreSQL", "postgres:**@localhost:1/celery_jobs", "postgres", "POSTGRES_URL"),
        ("Redis", "redis://localhost:1", "redis", "REDIS_URL"),
    ):
        assert f"{name}에 연결할 수 없습니다" in run.stdout
        assert url in run.stdout
        assert f"docker compose up -d {compose}" in run.stdout
        assert env in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert "worker" not in run.stdout  # 서비스가 없으면 워커를 띄우지도 않는다


def test_a_lesson_whose_worker_cannot_start_fails_with_the_log_tail():
    outcome = run_lesson("no_such_lesson", Console())
    assert outcome.ok is False
    assert "워커가 뜨지 못했습니다" in outcome.detail
    assert "exited before logging" in outcome.detail
    assert "no_such_lesson" in outcome.detail  # 워커 로그의 마지막 줄들이 원인을 말한다


def test_worker_start_failure_is_fast_and_carries_the_log():
    worker = Worker("no_such_lesson").start()
    try:
        with pytest.raises(WorkerError, match=r"exited before logging .*\(exit code \d+\)") as failure:
            worker.wait_ready(timeout=FAIL_FAST_SECONDS)
        assert "--- last lines of its log ---" in str(failure.value)
        assert "no_such_lesson" in str(failure.value)
    finally:
        worker.stop()


def test_stop_ends_the_worker_and_its_pool_processes():
    worker = Worker("practice00", concurrency=2).start()
    try:
        worker.wait_ready()
        pids = worker.pids()
        assert worker.proc.pid in pids
        assert len(pids) == 3  # 메인 프로세스 + prefork 자식 둘
    finally:
        code = worker.stop()
    assert code == 0  # SIGTERM으로 warm shutdown 했다
    assert worker.pids() == set()
    assert "Warm shutdown" in worker.log
    assert processes.mentioning(f"--hostname={worker.name}@") == []


def test_the_test_suite_stops_at_once_when_a_service_is_missing():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_project_files.py", "-p", "no:cacheprovider"],
        cwd=PROJECT_ROOT, env={**os.environ, "RABBITMQ_URL": "amqp://localhost:1"},
        capture_output=True, text=True, timeout=FAIL_FAST_SECONDS,
    )  # fmt: skip
    assert run.returncode == EXIT_SERVICES_DOWN
    assert "RabbitMQ에 연결할 수 없습니다: amqp://localhost:1" in run.stdout + run.stderr
    assert " passed" not in run.stdout and " skipped" not in run.stdout


def test_runner_exits_1_when_a_lesson_fails(monkeypatch, capsys):
    # 실패하는 실습 하나를 목록에 끼워 넣는다: 그 워커는 모듈이 없어 뜨지 못한다.
    from playground import runner

    monkeypatch.setattr(runner, "available_lessons", lambda: ["no_such_lesson"])
    assert runner.main(["all"]) == runner.EXIT_LESSON_FAILED
    assert "━━ no_such_lesson: 실패" in capsys.readouterr().out


class RecordingConsole(Console):
    """줄이 도착한 순간을 적어 두는 Console (화면에 찍히는 순서와 별개로, 언제 일어났는지 보려고)."""

    def __init__(self) -> None:
        super().__init__(stream=io.StringIO())
        self.arrivals: list[tuple[float, str, str]] = []

    def line(self, lesson: str, text: str) -> None:
        self.arrivals.append((time.monotonic(), lesson, text))
        super().line(lesson, text)

    def first(self, lesson: str, pattern: str) -> float:
        return next(t for t, name, text in self.arrivals if name == lesson and re.search(pattern, text))

    def last(self, lesson: str, pattern: str) -> float:
        return [t for t, name, text in self.arrivals if name == lesson and re.search(pattern, text)][-1]


@pytest.mark.early
def test_one_at_a_time_the_next_lessons_worker_starts_early_and_the_last_ones_stops_in_the_background():
    console = RecordingConsole()
    outcomes = run_lessons(["practice00", "practice03"], console, jobs=1)
    assert [o.ok for o in outcomes] == [True, True]
    # practice03의 워커는 practice00의 call_tasks 가 끝나기 전에 이미 떠 있었다.
    assert console.first("practice03", r"ready\.") < console.last("practice00", r"^call_tasks")
    assert console.first("practice03", r"^call_tasks") > console.last("practice00", r"^call_tasks")  # 하나씩
    # practice00의 워커는 practice03이 도는 동안 멈췄다.
    assert console.first("practice00", r"Warm shutdown") < console.last("practice03", r"^call_tasks")


def test_two_at_a_time_two_lessons_call_tasks_overlap():
    console = RecordingConsole()
    outcomes = run_lessons(["practice00", "practice03"], console, jobs=2)
    assert [o.ok for o in outcomes] == [True, True]
    assert console.first("practice03", r"^call_tasks") < console.last("practice00", r"^call_tasks")


def test_sigterm_stops_the_runner_and_everything_it_started():
    # practice07의 2단계: 실행기의 워커와 beat, call_tasks, 그리고 call_tasks 가 띄운 두 번째 beat가 모두 돈다.
    runner = subprocess.Popen(
        [sys.executable, "-m", "playground", "practice07"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    output = []
    for line in runner.stdout:
        output.append(line)
        if "beat를 하나 더 띄웠습니다" in line:
            break
    started = processes.descendants(runner.pid)
    assert len(started) >= 4, "".join(output)  # 워커(와 풀 자식), beat, call_tasks, 두 번째 beat
    runner.terminate()
    output.append(runner.stdout.read())
    assert runner.wait(60) != 0
    runner.stdout.close()
    left = [pid for pid in started if processes.alive(pid)]
    for pid in left:  # 실패해도 이 테스트가 띄운 것은 치운다
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "".join(output)
