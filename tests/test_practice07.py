"""practice07 README: beat 가 보내고 워커가 실행한다, beat 둘의 중복, 놓친 실행, expires, 결과 정리, worker -B."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
import redis
import sqlalchemy
from celery import Celery
from celery.beat import PersistentScheduler
from celery.schedules import crontab

import global_config
from playground import PROJECT_ROOT
from playground.lessons import lesson_workers, purge, run_call_tasks
from playground.workers import Beat, Worker, running
from practice07.tasks import TICK_SECONDS, app, runs, tick
from tests import CALL_TIMEOUT_SECONDS
from tests.readme import assert_samples_match

WAIT = 20
COUNT_SECONDS = 3  # 중복을 세는 시간


@pytest.fixture(scope="module")
def worker_and_beat():
    purge("practice07")
    with running(*lesson_workers("practice07")) as processes:
        yield processes


def test_the_lesson_declares_a_worker_and_a_beat():
    worker, beat = lesson_workers("practice07")
    assert type(worker) is Worker and type(beat) is Beat
    assert "beat" in beat.argv and any(arg.startswith("--schedule=") for arg in beat.argv)


def test_call_tasks_runs_the_whole_scenario(worker_and_beat):
    run = run_call_tasks("practice07", timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match("practice07", run.output)  # README 의 출력 예시가 곧 이 출력이다
    assert "!!" not in run.output
    worker, beat = worker_and_beat
    assert "Discarding revoked task: practice07.tasks.add[" in worker.log
    assert "Scheduler: Sending due task tick-every-second (practice07.tasks.tick)" in beat.log


def _ticks_per_second(task_name: str) -> float:
    since = time.time()
    time.sleep(COUNT_SECONDS)
    return len(runs(task_name, since=since, until=since + COUNT_SECONDS)) / COUNT_SECONDS


def test_two_beats_sharing_one_schedule_file_still_send_everything_twice(tmp_path):
    # 일정 파일(-s)은 두 번째 beat 를 막지 않는다(Python 3.13 의 shelve 는 파일을 잠그지 않는다).
    purge("practice07")
    shared = str(tmp_path / "celerybeat-schedule")
    with running(Worker("practice07"), Beat("practice07", schedule=shared), Beat("practice07", schedule=shared)):
        assert _ticks_per_second("tick") >= 1.5
        assert _ticks_per_second("tick_once") <= 1.34  # 잠금: 한 간격에 한 번 (경계에 걸리면 하나 더)


def _schedule_with_last_runs(path: str, last_runs: dict[str, timedelta]) -> None:
    """path 에 beat 의 일정 파일을 만들고, 항목마다 마지막 실행을 그만큼 전으로 적는다(beat 가 멈춰 있던 것처럼)."""
    scheduler = PersistentScheduler(app=app, schedule_filename=path, lazy=False)
    for name, ago in last_runs.items():
        scheduler.schedule[name].last_run_at = scheduler.app.now() - ago
    scheduler.sync()
    scheduler.close()


def test_a_beat_that_was_stopped_runs_each_missed_entry_once_at_start(tmp_path):
    # 멈춰 있던 사이에 놓친 주기 실행(3600번)과 crontab 실행(3번)을 쌓아 두지 않는다: 시작할 때 한 번씩.
    path = str(tmp_path / "celerybeat-schedule")
    _schedule_with_last_runs(path, {"tick-every-second": timedelta(hours=1), "nightly-report": timedelta(days=3)})
    with running(Beat("practice07", schedule=path)) as (beat,):
        beat.wait_for_log("Sending due task nightly-report", WAIT)
        beat.wait_for_log("Sending due task tick-every-second", WAIT)
        time.sleep(TICK_SECONDS / 3)  # 밀린 실행을 몰아서 보낸다면 지금쯤 여러 줄이다
        assert beat.log.count("Sending due task tick-every-second") == 1
        time.sleep(TICK_SECONDS * 2)
        assert beat.log.count("Sending due task nightly-report") == 1  # 다음은 04:00


def test_beat_cron_starting_deadline_skips_a_missed_crontab_run():
    # 기본값(None)이면 놓친 crontab 실행이 시작할 때 돈다. 기한을 주면 그보다 오래된 놓친 실행은 건너뛴다.
    assert app.conf.beat_cron_starting_deadline is None
    probe = Celery("deadline", set_as_current=False)
    probe.conf.timezone = "Asia/Seoul"
    nightly = crontab(hour=4, minute=0, app=probe)
    three_days_ago = nightly.now() - timedelta(days=3)
    assert nightly.is_due(three_days_ago).is_due is True
    probe.conf.beat_cron_starting_deadline = 3600
    assert nightly.is_due(three_days_ago).is_due is False


def test_beat_adds_backend_cleanup_daily_at_four_for_the_database_backend(tmp_path):
    scheduler = PersistentScheduler(app=app, schedule_filename=str(tmp_path / "s"), lazy=False)
    entry = scheduler.schedule["celery.backend_cleanup"]
    scheduler.close()
    assert entry.task == "celery.backend_cleanup"
    assert entry.schedule == crontab("0", "4", "*")
    assert "celery.backend_cleanup" not in app.conf.beat_schedule  # 적지 않아도 beat 가 더한다


def test_backend_cleanup_deletes_old_rows_whatever_their_state_and_never_rows_without_date_done():
    engine = sqlalchemy.create_engine(global_config.POSTGRES_URL.removeprefix("db+"))
    app.backend.ResultSession()  # 표가 없으면 만든다
    ids = {state: str(uuid.uuid4()) for state in ("SUCCESS", "FAILURE", "STARTED", "NO_DATE")}
    insert = (
        "INSERT INTO celery_taskmeta (id, task_id, status, date_done) "
        "VALUES (nextval('task_id_sequence'), :task_id, :status, {date_done})"
    )
    with engine.begin() as conn:
        for state, task_id in ids.items():
            date_done = "NULL" if state == "NO_DATE" else "now() - interval '1 hour'"
            status = "PENDING" if state == "NO_DATE" else state
            conn.execute(sqlalchemy.text(insert.format(date_done=date_done)), {"task_id": task_id, "status": status})
    app.backend.cleanup()
    with engine.connect() as conn:
        left = conn.execute(
            sqlalchemy.text("SELECT task_id FROM celery_taskmeta WHERE task_id = ANY(:ids)"),
            {"ids": list(ids.values())},
        ).scalars()
        assert set(left) == {ids["NO_DATE"]}
    engine.dispose()


@pytest.mark.parametrize(("expires", "ttl"), [("default", 86400), (None, -1)])
def test_the_redis_backend_sets_a_ttl_on_each_result_key_instead(expires, ttl):
    redis_app = Celery("ttl", backend=global_config.REDIS_URL, set_as_current=False)
    if expires != "default":
        redis_app.conf.result_expires = expires
    assert redis_app.backend.supports_autoexpire
    task_id = str(uuid.uuid4())
    redis_app.backend.store_result(task_id, 42, "SUCCESS")
    client = redis.Redis.from_url(global_config.REDIS_URL)
    assert abs(client.ttl(f"celery-task-meta-{task_id}") - ttl) <= 1
    client.delete(f"celery-task-meta-{task_id}")
    client.close()


def test_worker_dash_b_runs_beat_inside_the_worker(tmp_path):
    # 개발용: 워커 하나가 beat 도 돌린다(README 의 한 줄). 운영에서는 beat 를 따로 하나만.
    purge("practice07")
    embedded = Worker("practice07", extra_args=["-B", f"--schedule={tmp_path / 'celerybeat-schedule'}"])
    with running(embedded):
        assert _ticks_per_second("tick") >= 0.66
    assert "beat: Starting..." in embedded.log


def test_beat_keeps_its_schedule_in_celerybeat_schedule_unless_told_otherwise():
    assert app.conf.beat_schedule_filename == "celerybeat-schedule"
    assert "celerybeat-schedule*" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


def test_expires_travels_as_a_rabbitmq_per_message_ttl():
    queue = f"practice07.ttl-{uuid.uuid4().hex[:6]}"
    tick.apply_async(("ttl",), expires=5, queue=queue)
    with app.connection_for_write() as conn:
        message = conn.default_channel.basic_get(queue, no_ack=True)
        conn.default_channel.queue_delete(queue)
    assert message.properties["expiration"] == "5000"  # 밀리초


def test_a_second_beat_that_ignores_sigterm_is_killed_not_left_behind():
    # Celery 5.7 의 beat 가 보내는 도중에 SIGTERM 을 받으면 스스로 막힐 수 있다(py-amqp 의 쓰기 잠금). 그런 beat 대신
    # SIGTERM 을 무시하는 프로세스로: call_tasks 는 기다린 뒤 SIGKILL 로 끝낸다.
    from practice07.call_tasks import stop_second_beat

    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True)"
    code += "; time.sleep(60)"
    stubborn = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline() == "ready\n"  # SIGTERM 을 무시하게 된 뒤에
    stop_second_beat(stubborn)
    assert stubborn.returncode == -signal.SIGKILL
    stubborn.stdout.close()
