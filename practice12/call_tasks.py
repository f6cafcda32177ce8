"""practice12: 같은 호출이 브로커의 규칙에 따라 어떻게 달라지는지 본다.

우선순위와 prefetch, 워커가 붙잡은 countdown, Redis 브로커의 visibility_timeout 을 차례로 본다.

먼저 다른 터미널들에서 워커 둘을 띄운다:
    celery -A practice12.tasks worker --loglevel=info
    celery -A practice12.redis_tasks worker --loglevel=info
그다음:  python -m practice12.call_tasks
"""

import sys
import time
import uuid

from course import WAIT_SECONDS, Scenario
from practice12 import redis_tasks, tasks
from practice12.journal import started, wait_for_starts
from practice12.tasks import COUNTDOWN_SECONDS, HOLD_SECONDS, LONG_COUNTDOWN_SECONDS, QUORUM_QUEUE, SETTLE_SECONDS

scenario = Scenario(tasks.app)
step, show = scenario.step, scenario.show

SHORT_COUNTDOWN_SECONDS = redis_tasks.VISIBILITY_TIMEOUT_SECONDS - 1


def new_journal():
    return f"practice12:{uuid.uuid4().hex}"


def order_while_busy(lesson_tasks, blocker):
    """blocker가 하나뿐인 풀 프로세스를 붙잡은 동안 우선순위 없음, 1, 9를 차례로 보내고, 시작한 순서를 돌려준다."""
    key = new_journal()
    blocker.delay(key, "먼저", HOLD_SECONDS)
    wait_for_starts(key, 1, WAIT_SECONDS)
    lesson_tasks.note.delay(key, "없음")
    lesson_tasks.note.apply_async((key, "1"), priority=1)
    lesson_tasks.note.apply_async((key, "9"), priority=9)
    return [label for label, _ in wait_for_starts(key, 4, WAIT_SECONDS)][1:]


def after_a_countdown_task(queue):
    """countdown 작업을 보내고 곧바로 하나 더 보낸다. 둘이 보낸 때로부터 몇 초 뒤에 시작했는지 돌려준다."""
    key = new_journal()
    sent_at = time.time()
    tasks.note.apply_async((key, "countdown"), countdown=COUNTDOWN_SECONDS, queue=queue)
    tasks.note.apply_async((key, "바로"), queue=queue)
    starts = dict(wait_for_starts(key, 2, WAIT_SECONDS + COUNTDOWN_SECONDS))
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
    key = new_journal()
    redis_tasks.note.apply_async((key, "짧은"), countdown=SHORT_COUNTDOWN_SECONDS)
    redis_tasks.note.apply_async((key, "긴"), countdown=LONG_COUNTDOWN_SECONDS)
    time.sleep(LONG_COUNTDOWN_SECONDS + SETTLE_SECONDS)
    labels = [label for label, _ in started(key)]
    show(f"countdown={SHORT_COUNTDOWN_SECONDS} 작업의 실행 횟수", labels.count("짧은"), 1)
    runs = labels.count("긴")
    show(f"countdown={LONG_COUNTDOWN_SECONDS} 작업이 두 번 이상 실행되었습니다", runs >= 2, True, note=f"{runs}번")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
