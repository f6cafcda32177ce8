"""practice07 README: 워커가 멈춰 있어도 beat는 보낸다 — tick이 쌓이고, expires를 단 tick은 만료된다.

이 모듈의 테스트는 practice07 큐에 소비자가 없어야 한다. test_practice07 의 모듈 워커가 같은 큐를 소비하지 않도록
모듈을 나눴다.
"""

from __future__ import annotations

import re
import time

from playground.broker import queue_counts
from playground.lessons import purge
from playground.workers import Beat, Worker, running
from practice07.tasks import FRESH_EXPIRES_SECONDS, TICK_SECONDS, runs
from tests import WAIT_SECONDS

LESSON = "practice07"

BEAT_ALONE_SECONDS = 4  # 워커 없이 beat만 도는 시간 (README: 워커를 멈춰 두면 tick이 쌓인다)


def test_beat_keeps_sending_while_no_worker_runs_and_expires_drops_the_stale_ticks():
    # 워커가 멈춰 있어도 beat는 보낸다. 메시지는 큐에 쌓이고, 워커가 돌아오면 한꺼번에 실행된다. expires를 단
    # tick_fresh 는 큐에서 만료되어 RabbitMQ가 버리므로 마지막 것들만 돈다.
    purge(LESSON)
    with running(Beat(LESSON)) as (beat,):
        beat.wait_for_log("Sending due task tick-fresh-every-second", WAIT_SECONDS)
        time.sleep(BEAT_ALONE_SECONDS)
        waiting, consumers = queue_counts(LESSON)
        assert consumers == 0 and waiting >= 2 * (BEAT_ALONE_SECONDS - 1)  # tick, tick_once, tick_fresh 가 쌓였다
        back = time.time()
        with running(Worker(LESSON)) as (worker,):
            time.sleep(TICK_SECONDS / 2)
            burst_until = time.time()
            log = worker.log
    piled = len(runs("tick", since=back, until=burst_until))
    fresh = len(runs("tick_fresh", since=back, until=burst_until))
    assert piled >= BEAT_ALONE_SECONDS
    assert fresh <= FRESH_EXPIRES_SECONDS / TICK_SECONDS + 2  # 만료되지 않은 마지막 것들(워커가 뜨는 동안 보낸 것 포함)
    assert fresh < piled
    # 직접 해 보기: 워커 로그의 `Task practice07.tasks.tick[…] received` 가 한꺼번에 여럿, tick_fresh 는 한두 번
    received = {
        name: len(re.findall(rf"Task practice07\.tasks\.{name}\[[^\]]+\] received", log))
        for name in ("tick", "tick_fresh")
    }
    assert received["tick"] >= BEAT_ALONE_SECONDS
    assert received["tick_fresh"] < received["tick"]
