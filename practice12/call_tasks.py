"""practice12: 같은 호출이 브로커의 규칙에 따라 어떻게 달라지는지 본다.

우선순위와 prefetch, 워커가 붙잡은 countdown, Redis 브로커의 visibility_timeout 을 차례로 본다.

먼저 다른 터미널들에서 워커 둘을 띄운다:
    celery -A practice12.tasks worker --loglevel=info
    celery -A practice12.redis_tasks worker --loglevel=info
그다음:  python -m practice12.call_tasks
"""

import sys
import time

from course import WAIT_SECONDS, Journal, Scenario, never_within
from practice12 import redis_tasks, tasks
from practice12.tasks import (
    COUNTDOWN_SECONDS,
    HOLD_SECONDS,
    LONG_COUNTDOWN_SECONDS,
    QUORUM_QUEUE,
    SETTLE_SECONDS,
    journal,
)

scenario = Scenario(tasks.app)
step, show = scenario.step, scenario.show

SHORT_COUNTDOWN_SECONDS = redis_tasks.VISIBILITY_TIMEOUT_SECONDS - 1


def order_while_busy(lesson_tasks, blocker):
    """blocker가 하나뿐인 풀 프로세스를 붙잡은 동안 우선순위 없음, 1, 9를 차례로 보내고, 시작한 순서를 돌려준다."""
    run = Journal.new_run()
    blocker.delay(run, "먼저", HOLD_SECONDS)
    journal.wait_for(run, 1)
    lesson_tasks.note.delay(run, "없음")
    lesson_tasks.note.apply_async((run, "1"), priority=1)
    lesson_tasks.note.apply_async((run, "9"), priority=9)
    return [entry.what for entry in journal.wait_for(run, 4)][1:]


def after_a_countdown_task(queue):
    """countdown 작업을 보내고 곧바로 하나 더 보낸다. 둘이 보낸 때로부터 몇 초 뒤에 시작했는지 돌려준다."""
    run = Journal.new_run()
    sent_at = time.time()
    tasks.note.apply_async((run, "countdown"), countdown=COUNTDOWN_SECONDS, queue=queue)
    tasks.note.apply_async((run, "바로"), queue=queue)
    starts = {entry.what: entry.at for entry in journal.wait_for(run, 2, timeout=WAIT_SECONDS + COUNTDOWN_SECONDS)}
    return round(starts["바로"] - sent_at, 1), round(starts["countdown"] - sent_at, 1)


def calls():
    step("1. RabbitMQ 우선순위 큐에서는 큰 숫자가 먼저입니다 (이미 받아 둔 메시지는 빼고)")
    show(
        "hold 실행 중에 보낸 작업(우선순위 없음, 1, 9)의 실행 순서",
        order_while_busy(tasks, tasks.hold),
        ["없음", "9", "1"],
        note="hold는 시작 시 ack라서 빈 자리에 '없음'을 받아 두었습니다",
    )
    show(
        "hold_acks_late 실행 중에 보낸 작업(우선순위 없음, 1, 9)의 실행 순서",
        order_while_busy(tasks, tasks.hold_acks_late),
        ["9", "1", "없음"],
        note="자리가 차 있어서 셋 다 큐에서 기다렸습니다",
    )

    step("2. Redis 브로커에서는 우선순위가 거꾸로입니다 (0이 먼저, 우선순위 없음도 0)")
    show(
        "hold_acks_late 실행 중에 보낸 작업(우선순위 없음, 1, 9)의 실행 순서",
        order_while_busy(redis_tasks, redis_tasks.hold_acks_late),
        ["없음", "1", "9"],
    )

    step(f"3. 워커가 쥔 countdown={COUNTDOWN_SECONDS} 작업이 prefetch 자리를 차지합니다")
    waited, _ = after_a_countdown_task(queue=None)
    show(
        "클래식 큐: 곧바로 보낸 작업도 countdown을 기다렸습니다",
        waited >= COUNTDOWN_SECONDS - 0.5,
        True,
        note=f"{waited}초 뒤에 시작",
    )
    waited, countdown_at = after_a_countdown_task(queue=QUORUM_QUEUE.name)
    show(
        "쿼럼 큐와 topic exchange: 곧바로 보낸 작업은 곧바로 실행되었습니다",
        waited < 1,
        True,
        note=f"{waited}초 뒤에 시작",
    )
    show(
        "countdown 작업은 브로커가 기다렸다가 제때 넘겨주었습니다",
        countdown_at >= COUNTDOWN_SECONDS,
        True,
        note=f"{countdown_at}초 뒤에 시작",
    )

    timeout = redis_tasks.VISIBILITY_TIMEOUT_SECONDS
    step(f"4. Redis 브로커에서 visibility_timeout={timeout}초보다 긴 countdown 작업은 두 번 이상 실행됩니다")
    run = Journal.new_run()
    redis_tasks.note.apply_async((run, "짧은"), countdown=SHORT_COUNTDOWN_SECONDS)
    redis_tasks.note.apply_async((run, "긴"), countdown=LONG_COUNTDOWN_SECONDS)
    # 긴 작업이 처음 실행될 때까지 기다린다. 되돌아온 사본들도 그때 실행된다. 그다음 짧은 작업이 또 실행되지 않는지
    # SETTLE_SECONDS 동안 더 지켜본다.
    journal.wait_for(run, 1, what="긴", timeout=WAIT_SECONDS + LONG_COUNTDOWN_SECONDS)
    short_again = f"countdown={SHORT_COUNTDOWN_SECONDS} 작업의 두 번째 실행"
    never_within(SETTLE_SECONDS, lambda: journal.whats(run).count("짧은") > 1, short_again)
    whats = journal.whats(run)
    show(f"countdown={SHORT_COUNTDOWN_SECONDS} 작업의 실행 횟수", whats.count("짧은"), 1)
    runs = whats.count("긴")
    show(f"countdown={LONG_COUNTDOWN_SECONDS} 작업이 두 번 이상 실행되었습니다", runs >= 2, True, note=f"{runs}번")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
