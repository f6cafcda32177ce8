"""practice05의 작업들이 어느 큐를 거쳐 어느 워커에서 실행되는지 보여 준다.

먼저 다른 터미널 두 개에서 워커를 띄운다:
    celery -A practice05.tasks worker --queues=high --hostname=worker-high@%h --loglevel=info
    celery -A practice05.tasks worker --queues=low --hostname=worker-low@%h --loglevel=info
그다음:  python -m practice05.call_tasks
"""

import sys
import time

from celery.exceptions import TimeoutError as CeleryTimeoutError

from course import WAIT_SECONDS, Scenario
from practice05.tasks import (
    BACKLOG,
    SLOW_SECONDS,
    UNWATCHED_QUEUE,
    UNWATCHED_WAIT_SECONDS,
    app,
    build_report,
    cleanup,
    send_alert,
    worker_kind,
)

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect


def calls():
    step("1. 작업마다 가는 큐와 실행하는 워커")
    show("send_alert.delay(...) 의 (큐, 워커)", where(send_alert.delay("디스크 90%")), HIGH, note="task_routes")
    show("build_report.delay() 의 (큐, 워커)", where(build_report.delay()), LOW, note="task_routes")
    show("build_report.apply_async(queue='high') 의 (큐, 워커)", where(build_report.apply_async(queue="high")), HIGH)
    show("cleanup.delay() 의 (큐, 워커)", where(cleanup.delay()), LOW, note="경로 없음 → 기본 큐")

    step(f"2. 큐를 나누는 이유 (low에 {SLOW_SECONDS}초짜리 보고서 {BACKLOG}개가 밀려 있을 때)")
    backlog = [build_report.delay(SLOW_SECONDS) for _ in range(BACKLOG)]
    sent = time.time()
    separate = send_alert.delay("high 큐로 보낸 경보")
    shared = send_alert.apply_async(("low 큐로 보낸 경보",), queue="low")
    separate_done = separate.get(timeout=WAIT_SECONDS)["finished_at"]
    reports_done = [r.get(timeout=WAIT_SECONDS + BACKLOG * SLOW_SECONDS)["finished_at"] for r in backlog]
    shared_done = shared.get(timeout=WAIT_SECONDS)["finished_at"]
    print(f"    high 큐의 경보는 보낸 뒤 {separate_done - sent:.2f}초에 끝났습니다. worker-high 가 한가했습니다.")
    print(
        f"    low 큐의 경보는 보낸 뒤 {shared_done - sent:.2f}초에 끝났습니다. 보고서 {BACKLOG}개 뒤에 줄을 섰습니다."
    )
    print(f"    마지막 보고서는 보낸 뒤 {max(reports_done) - sent:.2f}초에 끝났습니다.")
    expect("high 경보가 밀린 보고서보다 먼저 끝남", separate_done < min(reports_done), True)
    expect("low 경보는 밀린 보고서가 다 끝난 뒤에 끝남", shared_done > max(reports_done), True)

    step("3. 아무 워커도 보지 않는 큐로 보낸 작업")
    lost = cleanup.apply_async(queue=UNWATCHED_QUEUE)
    with scenario.raises(CeleryTimeoutError):
        lost.get(timeout=UNWATCHED_WAIT_SECONDS)
    show(f"{UNWATCHED_WAIT_SECONDS}초 뒤 cleanup.apply_async(queue='{UNWATCHED_QUEUE}').state", lost.state, "PENDING")
    seen_by = "rabbitmqctl list_queues name messages consumers 로도 볼 수 있습니다"
    show(f"큐 {UNWATCHED_QUEUE} 의 (메시지, 컨슈머)", queue_depth(UNWATCHED_QUEUE), (1, 0), note=seen_by)
    delete_queue(UNWATCHED_QUEUE)
    print("    → task_create_missing_queues(기본 True)가 큐를 만들어 주었지만, 메시지를 가져갈 워커가 없습니다.")
    print("      이 실습은 보여 준 뒤 큐를 지웁니다. 지우지 않으면 이 메시지는 영원히 기다립니다.")


HIGH, LOW = ("high", "worker-high"), ("low", "worker-low")


def where(result):
    """작업이 어느 큐로 가서 어느 워커(노드 이름의 앞부분)가 실행했나."""
    place = result.get(timeout=WAIT_SECONDS)
    return place["routing_key"], worker_kind(place)


def queue_depth(name):
    with app.connection_for_write() as conn:
        declared = conn.default_channel.queue_declare(queue=name, passive=True)
        return declared.message_count, declared.consumer_count


def delete_queue(name):
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue=name)


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
