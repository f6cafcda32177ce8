"""practice07 README: beat가 보내고 워커가 실행한다, beat 둘의 중복, 놓친 실행, expires, 결과 정리, worker -B."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy
from celery import Celery
from celery.beat import PersistentScheduler
from celery.schedules import crontab

import global_config
from course import never_within
from playground import PROJECT_ROOT
from playground.lessons import lesson_workers, purge
from playground.services import sqlalchemy_url
from playground.workers import Beat, Worker, running
from practice07.call_tasks import per_second
from practice07.tasks import FRESH_EXPIRES_SECONDS, TICK_SECONDS, WATCH_SECONDS, app, tick
from tests import WAIT_SECONDS

# 이 모듈의 테스트는 저마다 워커와 beat를 띄운다. 모듈이 함께 쓰는 워커가 없으므로 한 테스트 프로세스에 모으지 않는다.
LESSON = "practice07"
QUIET_SECONDS = 2.5  # 보내지 않아야 하는 것을 지켜보는 시간 (간격의 두 배 남짓)
STOPPED_SECONDS = 3  # beat를 멈춰 두는 시간. 그사이 놓친 tick이 몰아서 오지 않는다
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/MainProcess\] (.*)$", re.MULTILINE)


def test_the_lesson_declares_a_worker_and_a_beat():
    worker, beat = lesson_workers(LESSON)
    assert type(worker) is Worker and type(beat) is Beat
    assert "beat" in beat.argv and any(arg.startswith("--schedule=") for arg in beat.argv)


def test_two_beats_sharing_one_schedule_file_still_send_everything_twice(tmp_path):
    # 일정 파일(-s)은 두 번째 beat를 막지 않는다(Python 3.13의 shelve는 파일을 잠그지 않는다).
    purge(LESSON)
    shared = str(tmp_path / "celerybeat-schedule")
    with running(Worker(LESSON), Beat(LESSON, schedule=shared), Beat(LESSON, schedule=shared)) as (worker, *beats):
        # 새 항목의 첫 tick은 시작하고 한 간격 뒤다. 둘 다 보내기 시작한 뒤부터 센다
        for beat in beats:
            beat.wait_for_log("Sending due task tick-every-second", WAIT_SECONDS)
        assert per_second("tick") >= 2
        assert per_second("tick_once") <= 1  # 잠금: 한 간격에 한 번 (경계에 걸린 하나는 반올림으로 지운다)
        # 직접 해 보기: 워커 로그의 `Task practice07.tasks.tick[…] received` 가 초마다 두 번씩
        received = _log_times(worker.log, "practice07.tasks.tick[", "] received")
        window = [when for when in received if (received[-1] - when).total_seconds() < WATCH_SECONDS]
        assert len(window) / WATCH_SECONDS >= 1.5


def _schedule_with_last_runs(path: str, last_runs: dict[str, timedelta], on: Celery = app) -> None:
    """path에 beat의 일정 파일을 만들고, 항목마다 마지막 실행을 그만큼 전으로 적는다(beat가 멈춰 있던 것처럼)."""
    scheduler = PersistentScheduler(app=on, schedule_filename=path, lazy=False)
    for name, ago in last_runs.items():
        scheduler.schedule[name].last_run_at = scheduler.app.now() - ago
    scheduler.sync()
    scheduler.close()


def test_a_beat_that_was_stopped_runs_each_missed_entry_once_at_start(tmp_path):
    # 멈춰 있던 사이에 놓친 주기 실행(3600번)과 crontab 실행(3번)을 쌓아 두지 않는다: 시작할 때 한 번씩.
    path = str(tmp_path / "celerybeat-schedule")
    _schedule_with_last_runs(path, {"tick-every-second": timedelta(hours=1), "nightly-report": timedelta(days=3)})
    with running(Beat(LESSON, schedule=path)) as (beat,):
        beat.wait_for_log("Sending due task nightly-report", WAIT_SECONDS)
        beat.wait_for_log("Sending due task tick-every-second", WAIT_SECONDS)
        # 밀린 실행을 몰아서 보낸다면 한 간격이 되기 전에 여러 줄이다
        never_within(TICK_SECONDS / 3, lambda: _sends(beat, "tick-every-second") > 1, "밀린 tick을 몰아서 보냄")
        # 다음 nightly-report 는 04:00이다
        never_within(TICK_SECONDS * 2, lambda: _sends(beat, "nightly-report") > 1, "nightly-report 를 또 보냄")


def _sends(beat: Beat, entry: str) -> int:
    """beat 로그의 `Sending due task <entry>` 줄 수."""
    return beat.log.count(f"Sending due task {entry}")


def _log_times(log: str, *texts: str) -> list[datetime]:
    """로그에서 texts를 모두 담은 줄들의 시각."""
    return [
        datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f")
        for when, line in LOG_TIME.findall(log)
        if all(text in line for text in texts)
    ]


def test_a_new_entry_is_first_sent_one_interval_after_start_and_a_lost_file_means_no_catch_up(tmp_path):
    # 일정 파일이 없으면(컨테이너에 볼륨이 없을 때처럼) 항목마다 last_run_at=지금 으로 시작한다: 주기 항목은 한 간격
    # 뒤에 처음 보내고, 놓친 crontab 실행(04:00)은 보내지 않는다.
    with running(Beat(LESSON, schedule=str(tmp_path / "celerybeat-schedule"))) as (beat,):
        beat.wait_for_log("Sending due task tick-every-second", WAIT_SECONDS)
        never_within(QUIET_SECONDS, lambda: _sends(beat, "nightly-report"), "놓친 nightly-report 를 보냄")
        log = beat.log
    (started,) = _log_times(log, "beat: Starting...")
    first = _log_times(log, "Sending due task tick-every-second")[0]
    assert (first - started).total_seconds() >= 0.9 * TICK_SECONDS


def test_a_timezone_change_resets_the_schedule_file_so_a_missed_crontab_run_is_not_sent(tmp_path):
    # 같은 일정 파일이라도 timezone(또는 enable_utc)이 바뀌면 beat가 저장된 일정을 비운다: 사흘 전의 지난 실행도
    # 함께 사라지므로, 놓친 crontab 실행을 보내지 않는다.
    path = str(tmp_path / "celerybeat-schedule")
    utc_app = Celery(LESSON, set_as_current=False)
    utc_app.conf.update(beat_schedule=app.conf.beat_schedule, timezone="UTC")
    _schedule_with_last_runs(path, {"nightly-report": timedelta(days=3)}, on=utc_app)
    with running(Beat(LESSON, schedule=path)) as (beat,):
        beat.wait_for_log("Reset: Timezone changed from 'UTC' to 'Asia/Seoul'", WAIT_SECONDS)
        beat.wait_for_log("Sending due task tick-every-second", WAIT_SECONDS)
        never_within(QUIET_SECONDS, lambda: _sends(beat, "nightly-report"), "놓친 nightly-report 를 보냄")


def test_stopping_beat_and_starting_it_again_sends_each_entry_once_then_on_its_interval(tmp_path):
    # 직접 해 보기의 첫 항목: beat를 Ctrl-C 로 멈췄다가 몇 초 뒤 다시 띄운다. 멈춘 사이의 tick은 몰아서 오지 않는다.
    path = str(tmp_path / "celerybeat-schedule")
    with running(Beat(LESSON, schedule=path)) as (first,):
        first.wait_for_log("Sending due task tick-every-second", WAIT_SECONDS)
        # 보내는 도중이 아니라 간격의 한가운데서 누른다. Celery 5.7의 beat는 메시지를 보내는 도중에 신호를 받으면
        # 스스로 막힐 수 있다(call_tasks.stop_second_beat 의 설명).
        time.sleep(TICK_SECONDS / 2)
        first.proc.send_signal(signal.SIGINT)  # 터미널의 Ctrl-C
        assert first.proc.wait(WAIT_SECONDS) == 0
    time.sleep(STOPPED_SECONDS)
    with running(Beat(LESSON, schedule=path)) as (again,):
        again.wait_for_log("Sending due task tick-every-second", WAIT_SECONDS)
        never_within(TICK_SECONDS / 2, lambda: _sends(again, "tick-every-second") > 1, "멈춘 사이의 tick을 몰아서 보냄")
        time.sleep(TICK_SECONDS * 2)
        sends = _log_times(again.log, "Sending due task tick-every-second")
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sends)]
    assert gaps and all(gap >= 0.9 * TICK_SECONDS for gap in gaps)


def test_beat_cron_starting_deadline_skips_a_missed_crontab_run():
    # 기본값(None)이면 놓친 crontab 실행이 시작할 때 돈다. 기한을 주면 그보다 오래된 놓친 실행은 건너뛴다.
    assert app.conf.beat_cron_starting_deadline is None
    # 지금 시각을 고정한다: 새벽 4시 실행에서 8시간 지난 낮 12시. 시계를 따르면 4시와 5시 사이에는 오늘 4시의 놓친
    # 실행이 한 시간 기한 안이라 돌아서, 그 시간에 실행하면 이 테스트가 실패한다.
    noon = datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("Asia/Seoul"))
    probe = Celery("deadline", set_as_current=False)
    probe.conf.timezone = "Asia/Seoul"
    nightly = crontab(hour=4, minute=0, app=probe, nowfun=lambda: noon)
    three_days_ago = noon - timedelta(days=3)
    assert nightly.is_due(three_days_ago).is_due is True
    probe.conf.beat_cron_starting_deadline = 3600
    assert nightly.is_due(three_days_ago).is_due is False
    # 가장 최근의 놓친 실행이 기한 안이면(4시 3분) 돈다.
    just_after = crontab(hour=4, minute=0, app=probe, nowfun=lambda: noon.replace(hour=4, minute=3))
    assert just_after.is_due(three_days_ago).is_due is True


def test_beat_adds_backend_cleanup_daily_at_four_for_the_database_backend(tmp_path):
    scheduler = PersistentScheduler(app=app, schedule_filename=str(tmp_path / "s"), lazy=False)
    entry = scheduler.schedule["celery.backend_cleanup"]
    scheduler.close()
    assert entry.task == "celery.backend_cleanup"
    assert entry.schedule == crontab("0", "4", "*")
    assert entry.options["expires"] == 12 * 3600  # Celery도 자기 항목에 expires를 단다
    assert "celery.backend_cleanup" not in app.conf.beat_schedule  # 적지 않아도 beat가 더한다
    # 결과를 스스로 만료시키는 백엔드(Redis: 키마다 TTL)에는 더하지 않는다.
    redis_app = Celery(LESSON, backend=global_config.REDIS_URL, set_as_current=False)
    scheduler = PersistentScheduler(app=redis_app, schedule_filename=str(tmp_path / "r"), lazy=False)
    assert "celery.backend_cleanup" not in scheduler.schedule
    scheduler.close()


def test_backend_cleanup_deletes_old_rows_whatever_their_state_and_never_rows_without_date_done():
    # date_done 은 끝난 state(SUCCESS, FAILURE, REVOKED …)에만 적힌다. 실행 중인(또는 실행 중에 워커와 함께 사라진,
    # practice08) 작업의 STARTED 행은 date_done 이 비어 있어, backend_cleanup 이 영원히 지우지 않는다.
    engine = sqlalchemy.create_engine(sqlalchemy_url(global_config.POSTGRES_URL))
    app.backend.ResultSession()  # 표가 없으면 만든다
    old = {state: str(uuid.uuid4()) for state in ("SUCCESS", "FAILURE", "STARTED")}
    insert = (
        "INSERT INTO celery_taskmeta (id, task_id, status, date_done) "
        "VALUES (nextval('task_id_sequence'), :task_id, :status, now() - interval '1 hour')"
    )
    started = str(uuid.uuid4())
    app.backend.store_result(started, {"pid": 1}, "STARTED")  # 워커가 task_track_started 로 적는 것과 같은 길
    with engine.begin() as conn:
        for state, task_id in old.items():
            conn.execute(sqlalchemy.text(insert), {"task_id": task_id, "status": state})
        date_done = conn.execute(
            sqlalchemy.text("SELECT date_done FROM celery_taskmeta WHERE task_id = :id"), {"id": started}
        ).scalar_one()
    assert date_done is None
    app.backend.cleanup()
    with engine.connect() as conn:
        left = conn.execute(
            sqlalchemy.text("SELECT task_id FROM celery_taskmeta WHERE task_id = ANY(:ids)"),
            {"ids": [*old.values(), started]},
        ).scalars()
        assert set(left) == {started}
    engine.dispose()
    assert app.AsyncResult(started).state == "STARTED"


def test_on_the_redis_broker_the_worker_discards_a_message_that_expired_in_the_queue():
    # Redis 브로커에는 메시지별 TTL이 없다(kombu는 expiration을 무시한다). 만료된 메시지는 큐에 남아 있다가, 받은
    # 워커가 revoked로 버린다. practice12의 Redis 브로커 앱으로 본다.
    from practice12.redis_tasks import app as redis_app
    from practice12.redis_tasks import note

    redis_app.control.purge()
    expired = note.apply_async(("practice07", "expired"), expires=FRESH_EXPIRES_SECONDS)
    time.sleep(FRESH_EXPIRES_SECONDS + 0.5)
    assert redis.Redis.from_url(global_config.REDIS_URL).llen("practice12.redis") == 1  # 아직 큐에 있다
    with running(Worker("practice12", module="redis_tasks", concurrency=None)) as (worker,):
        worker.wait_for_log(rf"Discarding revoked task: practice12\.redis_tasks\.note\[{expired.id}\]", WAIT_SECONDS)


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
    # 개발용: 워커 하나가 beat도 돌린다(README의 한 줄). 운영에서는 beat를 따로 하나만.
    purge(LESSON)
    embedded = Worker(LESSON, extra_args=["-B", f"--schedule={tmp_path / 'celerybeat-schedule'}"])
    with running(embedded):
        assert per_second("tick") >= 1
    assert "beat: Starting..." in embedded.log


def test_two_workers_with_dash_b_are_two_beats_and_every_entry_runs_twice(tmp_path):
    # README: 워커를 여럿 띄우면 beat도 여럿이 된다(워커마다 -B).
    purge(LESSON)
    embedded = [
        Worker(LESSON, extra_args=["-B", f"--schedule={tmp_path / f'celerybeat-schedule-{n}'}"]) for n in (1, 2)
    ]
    with running(*embedded):
        assert per_second("tick") >= 2


def test_crontab_times_are_read_in_utc_unless_the_app_sets_a_timezone():
    plain = Celery("plain", set_as_current=False)
    assert str(plain.timezone) == "UTC" and plain.conf.timezone is None
    assert str(app.timezone) == "Asia/Seoul"


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
    # Celery 5.7의 beat가 보내는 도중에 SIGTERM을 받으면 스스로 막힐 수 있다(py-amqp 의 쓰기 잠금). 그런 beat 대신
    # SIGTERM을 무시하는 프로세스로: call_tasks 는 기다린 뒤 SIGKILL로 끝낸다.
    from practice07.call_tasks import stop_second_beat

    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True)"
    code += "; time.sleep(60)"
    stubborn = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline() == "ready\n"  # SIGTERM을 무시하게 된 뒤에
    stop_second_beat(stubborn)
    assert stubborn.returncode == -signal.SIGKILL
    stubborn.stdout.close()
