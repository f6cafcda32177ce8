"""practice07: beat가 보낸 작업을 세고, beat를 하나 더 띄워 중복을 보고, 만료와 결과 정리를 지켜본다.

먼저 다른 터미널에서 워커와 beat를 띄운다:
    celery -A practice07.tasks worker --loglevel=info
    celery -A practice07.tasks beat --loglevel=info
그다음:  python -m practice07.call_tasks
"""

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from celery.exceptions import TaskRevokedError

from course import WAIT_SECONDS, NotInTime, Scenario, wait_until
from practice07.tasks import (
    EXPIRES_SECONDS,
    LATE_SECONDS,
    RESULT_EXPIRES_SECONDS,
    TICK_SECONDS,
    WATCH_SECONDS,
    add,
    app,
    runs,
    tick,
)

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect

BEAT_STOP_SECONDS = 5  # 두 번째 beat가 SIGTERM에 끝나기를 기다리는 상한
NOBODY = "practice07.nobody"  # 어떤 워커도 소비하지 않는 큐. 메시지가 워커에 닿지 못하는 상황을 만든다


def wait_for_beat():
    """beat가 보낸 tick이 워커에서 실행될 때까지 기다린다. 오지 않으면 beat나 워커가 없는 것이다."""
    wait_until(lambda: runs("tick", since=time.time() - 2 * TICK_SECONDS), "beat가 보낸 tick의 실행")


def per_second(task_name):
    """지금부터 WATCH_SECONDS 초 동안 task_name 이 실행된 횟수를 초당 횟수로 돌려준다.

    창의 끝에서 어긋나는 하나는 반올림으로 지운다.
    """
    since = time.time()
    time.sleep(WATCH_SECONDS)
    return round(len(runs(task_name, since=since, until=since + WATCH_SECONDS)) / WATCH_SECONDS)


def second_beat(folder):
    """스케줄 파일과 로그 파일을 따로 쓰는 beat를 하나 더 띄운다."""
    log = f"{folder}/second-beat.log"
    command = [
        "celery",
        "-A",
        "practice07.tasks",
        "beat",
        f"--schedule={folder}/second",
        f"--logfile={log}",
        "--loglevel=info",
    ]
    beat = subprocess.Popen([sys.executable, "-m", *command], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def sent_first_tick():
        # 실행을 시작해 첫 tick을 보냈다. 새 스케줄 항목은 한 간격 뒤에 처음 보낸다.
        return os.path.exists(log) and "Sending due task tick-every-second" in Path(log).read_text()

    try:
        wait_until(lambda: beat.poll() is not None or sent_first_tick(), "두 번째 beat의 첫 tick")
    except NotInTime:
        beat.kill()
        beat.wait()
        raise
    if beat.poll() is not None:
        raise RuntimeError(f"the second beat did not start (exit code {beat.returncode})")
    return beat


def stop_second_beat(beat):
    """SIGTERM으로 멈추고, BEAT_STOP_SECONDS 안에 끝나지 않으면 SIGKILL로 끝낸다. 어떤 경우에도 남겨 두지 않는다.

    Celery 5.7의 beat는 메시지를 보내는 도중에 SIGTERM을 받으면 스스로 막힐 수 있다. 신호 처리기가 같은 연결을
    닫으려다 py-amqp 의 쓰기 잠금에 걸리기 때문이다. 이 beat의 스케줄 파일은 임시 폴더에 있으므로 SIGKILL로 잃을
    것이 없다.
    """
    beat.terminate()
    try:
        beat.wait(BEAT_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        beat.kill()
        beat.wait()


def calls():
    step("1. beat가 스케줄에 맞춰 보내고 워커가 실행합니다")
    wait_for_beat()
    show(f"{WATCH_SECONDS}초 동안 tick이 실행된 횟수 ÷ {WATCH_SECONDS}", per_second("tick"), 1)
    nightly = app.conf.beat_schedule["nightly-report"]["schedule"]
    show("beat_schedule['nightly-report']['schedule']", nightly)
    now = nightly.now()
    next_run = datetime.fromtimestamp(round((now + nightly.remaining_estimate(now)).timestamp()), nightly.tz)
    show("다음 실행", next_run.strftime("%H:%M %Z"), "04:00 KST", note=f"timezone={app.conf.timezone}")

    step("2. beat를 하나 더 띄우면 모든 항목이 두 번씩 보내집니다")
    with tempfile.TemporaryDirectory() as schedule_dir:
        beat = second_beat(schedule_dir)
        print("    celery -A practice07.tasks beat를 하나 더 띄웠습니다 (스케줄 파일은 따로, beat_schedule 은 같게)")
        try:
            show("beat가 둘일 때 tick이 초당 실행된 횟수", per_second("tick"), 2, note="같은 일을 두 번 했습니다")
            show(
                "beat가 둘일 때 tick_once 가 초당 효과를 낸 횟수",
                per_second("tick_once"),
                1,
                note="잠금 덕분에 한 번만 일했습니다",
            )
        finally:
            stop_second_beat(beat)

    step(f"3. 만료된 메시지의 행방 (expires={EXPIRES_SECONDS})")
    queued = tick.apply_async(("expired",), expires=EXPIRES_SECONDS, queue=NOBODY)
    time.sleep(EXPIRES_SECONDS + 0.5)
    with app.connection_for_write() as conn:
        left = conn.default_channel.queue_declare(queue=NOBODY, passive=True).message_count
        conn.default_channel.queue_delete(queue=NOBODY)
    show("큐에서 만료된 뒤 큐에 남은 메시지", left, 0, note="RabbitMQ가 메시지별 TTL로 조용히 버렸습니다")
    show("큐에서 만료된 작업의 state", queued.state, "PENDING", note="아무도 기록하지 않아 영원히 PENDING입니다")
    late = add.apply_async((1, 1), countdown=LATE_SECONDS, expires=EXPIRES_SECONDS)
    error = late.get(timeout=WAIT_SECONDS + LATE_SECONDS, propagate=False, interval=0.1)
    show("워커에서 만료된 작업의 get(propagate=False)", error, note="워커 로그: Discarding revoked task")
    expect("워커에서 만료된 작업의 예외", type(error), TaskRevokedError)
    show("워커에서 만료된 작업의 state", late.state, "REVOKED")

    step(f"4. celery.backend_cleanup 이 result_expires({RESULT_EXPIRES_SECONDS}초)보다 오래된 결과 행을 지웁니다")
    done = add.delay(2, 3)
    show("add.delay(2, 3).get()", done.get(timeout=WAIT_SECONDS, interval=0.1), 5)
    time.sleep(RESULT_EXPIRES_SECONDS + 0.5)
    app.tasks["celery.backend_cleanup"].delay().get(timeout=WAIT_SECONDS, interval=0.1)
    show("정리한 뒤 AsyncResult(그 id).state", app.AsyncResult(done.id).state, "PENDING", note="행이 지워졌습니다")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
