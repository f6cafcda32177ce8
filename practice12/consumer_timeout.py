"""practice12의 세 번째 앱(직접 해 보기). RabbitMQ의 consumer_timeout 을 본다. ack를 너무 오래 미루면 컨슈머가 끊긴다.

RabbitMQ는 컨슈머가 메시지를 받고 consumer_timeout 안에 ack하지 않으면 그 컨슈머를 끊는다. 쿼럼 큐에서는
basic.cancel을 보낸다. Celery는 다시 연결하고, ack되지 않은 메시지는 첫 실행이 끝나기도 전에 재전달된다.
acks_late 작업이 이 시간보다 길면 같은 작업이 끝없이 다시 실행된다. consumer_timeout 은 가장 긴 작업보다 길게 두고
(RabbitMQ 기본값 30분), 긴 일은 잘게 나눠야 한다. 이 스크립트는 그 되풀이를 보이고 revoke로 멈춘다.
큐마다 x-consumer-timeout 인자로 정할 수 있는 것은 쿼럼 큐뿐이다. PRACTICE12_QUEUE_TYPE=classic 으로 워커를 띄우면
RabbitMQ 4.3이 큐 선언을 거부하고(PRECONDITION_FAILED) 워커가 끝난다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice12.consumer_timeout worker --hostname=timeout@%h --loglevel=info
    터미널 2:  python -m practice12.consumer_timeout
"""

import os
import sys
import time

from celery import Celery
from kombu import Exchange, Queue

from course import Happened, Journal, NotInTime, never_within, wait_until
from global_config import RABBITMQ_URL, REDIS_URL
from practice12.tasks import journal  # 실행 기록은 tasks.py 의 것 하나를 함께 쓴다

CONSUMER_TIMEOUT_SECONDS = 5  # ack 없이 이만큼 지나면 브로커가 컨슈머를 끊는다. RabbitMQ는 몇 초마다 확인한다
LONG_TASK_SECONDS = 12  # consumer_timeout 보다 긴 acks_late 작업
START_TIMEOUT_SECONDS = 10  # 워커가 없다고 보기까지
REPLY_SECONDS = 0.5  # revoke에 워커가 답하기를 기다리는 시간
# 노드 이름을 따로 준다. practice12.tasks 워커(celery@호스트)와 같은 이름이면 RabbitMQ 4.3이 둘째를 거부한다.
WORKER_COMMAND = "celery -A practice12.consumer_timeout worker --hostname=timeout@%h --loglevel=info"
QUEUE_TYPES = ("quorum", "classic")

QUEUE_TYPE = os.environ.get("PRACTICE12_QUEUE_TYPE", "quorum")
if QUEUE_TYPE not in QUEUE_TYPES:
    raise SystemExit(
        f"PRACTICE12_QUEUE_TYPE 값을 알 수 없습니다: {QUEUE_TYPE!r}. 쓸 수 있는 값: {', '.join(QUEUE_TYPES)}"
    )

app = Celery("practice12.consumer_timeout", broker=RABBITMQ_URL, backend=REDIS_URL)
TIMEOUT_QUEUE = Queue(
    f"practice12.timeout-{QUEUE_TYPE}",
    Exchange("practice12.timeout", type="topic"),
    routing_key=f"practice12.timeout-{QUEUE_TYPE}",
    queue_arguments={"x-queue-type": QUEUE_TYPE, "x-consumer-timeout": CONSUMER_TIMEOUT_SECONDS * 1000},
)
app.conf.update(
    task_queues=[TIMEOUT_QUEUE],
    task_default_queue=TIMEOUT_QUEUE.name,
    task_acks_late=True,  # 완료 후 ack. 그때까지 브로커는 이 컨슈머가 메시지를 붙잡고 있다고 본다
    worker_concurrency=2,  # CPU가 하나인 기계에서도 재전달된 메시지가 첫 실행과 나란히 실행된다
)


@app.task(ignore_result=True)
def long_job(run):
    journal.write(run, "실행")
    time.sleep(LONG_TASK_SECONDS)


def stop_redelivering(task_id):
    """revoke된 id는 재전달되어도 워커가 실행하지 않고 버린다(ack). 이미 실행 중인 것은 끝까지 간다.

    revoke는 워커마다 있는 제어 큐로 간다. 이 큐는 연결에 딸려 있어서 워커가 다시 연결하는 동안에는 없다. 그때 보낸
    revoke는 아무도 받지 못하므로, 워커가 받았다고 답할 때까지 다시 보낸다.
    """
    try:
        wait_until(
            lambda: app.control.revoke(task_id, reply=True, timeout=REPLY_SECONDS),
            "revoke를 받았다는 워커의 답",
            START_TIMEOUT_SECONDS,
        )
    except NotInTime as exc:
        print(f"    !! 예상과 다름: {exc}")


def main():
    run = Journal.new_run()
    sent = long_job.delay(run)
    print(
        f"long_job({LONG_TASK_SECONDS}초, acks_late) 을 보냈습니다. "
        f"x-consumer-timeout 값은 {CONSUMER_TIMEOUT_SECONDS}초입니다."
    )
    try:
        journal.wait_for(run, 1, timeout=START_TIMEOUT_SECONDS)
    except NotInTime:
        app.control.purge()  # 보낸 메시지를 거둔다. 나중에 뜬 워커가 끝없는 되풀이를 시작하지 않게 한다
        print(f"{START_TIMEOUT_SECONDS}초 안에 시작하지 않았습니다. 다른 터미널에서 띄우세요:")
        print(f"    {WORKER_COMMAND}")
        return 1
    try:
        runs = journal.wait_for(run, 2, timeout=LONG_TASK_SECONDS)
        second = runs[1].at - runs[0].at
        print(f"    첫 실행이 끝나기 전에 같은 메시지가 재전달되어 또 실행되었습니다 → {second:.0f}초 뒤")
        print("    (워커 로그: Connection to broker lost … ConsumerCancelled … 'Basic.cancel')")
    except NotInTime:
        print(f"    !! 예상과 다름: {LONG_TASK_SECONDS}초 안에 재전달되지 않았습니다")
        return 1
    finally:
        # Ctrl-C를 포함해 어떻게 끝나든 되풀이를 남겨 두지 않는다.
        stop_redelivering(sent.id)
    try:
        # 더 재전달되더라도 워커가 버리므로 실행 기록은 두 줄 그대로다.
        never_within(LONG_TASK_SECONDS, lambda: journal.whats(run)[2:], "revoke 한 뒤에 새로 시작한 실행")
    except Happened as exc:
        print(f"    !! 예상과 다름: {exc}")
        return 1
    count = len(journal.read(run))
    print(f"    revoke 한 뒤 {LONG_TASK_SECONDS}초 동안 새로 시작한 실행 → {count - 2}번 (모두 {count}번)")
    return 0 if count == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
