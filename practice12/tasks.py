"""practice12 — 브로커가 약속하는 것: RabbitMQ 4.3과 Redis

무엇을 배우나: 같은 Celery 코드라도 브로커가 무엇을 약속하느냐에 따라 다르게 실행된다. RabbitMQ의 우선순위
큐(x-max-priority)에서는 숫자가 클수록 먼저다. 그러나 워커가 이미 받아 둔(prefetch) 메시지는 우선순위와 상관없이
먼저 실행된다. acks_late 면 자리가 비지 않아 받아 두지 않는다. RabbitMQ 4.x에서는 kombu가 global QoS를 요청하지
않고 prefetch를 컨슈머마다 건다. 그래서 워커가 붙잡고 있는 countdown 작업은 기다리는 내내 prefetch 자리 하나를
차지한다. 고치는 법은 쿼럼 큐와 topic exchange다. 그러면 브로커가 대신 기다린다(native delayed delivery).
브로커가 대신 기다릴지는 보내는 쪽 앱의 큐 설정이 정한다. Redis 브로커의 visibility_timeout 과 거꾸로 된 우선순위는
redis_tasks.py 에 있다.

실행 방법 (프로젝트 폴더에서, 터미널 세 개):
    터미널 1:  celery -A practice12.tasks worker --loglevel=info
    터미널 2:  celery -A practice12.redis_tasks worker --loglevel=info
    터미널 3:  python -m practice12.call_tasks
"""

import time

from celery import Celery
from kombu import Exchange, Queue

from course import Journal
from global_config import RABBITMQ_URL, REDIS_URL

HOLD_SECONDS = 1  # 앞선 작업이 풀 프로세스 하나를 붙잡고 있는 시간
COUNTDOWN_SECONDS = 3  # 기다렸다가 실행되는 작업의 countdown
SETTLE_SECONDS = 1  # 결과를 세기 전에 더 기다려 보는 시간. 늦게 오는 중복이 없는지 본다
LONG_COUNTDOWN_SECONDS = 5  # Redis 브로커의 visibility_timeout(redis_tasks.py)보다 긴 countdown


app = Celery("practice12", broker=RABBITMQ_URL, backend=REDIS_URL)
# 클래식 큐. 우선순위는 0~10(x-max-priority)이고, exchange는 direct다.
PRIORITY_QUEUE = Queue(
    "practice12", Exchange("practice12"), routing_key="practice12", queue_arguments={"x-max-priority": 10}
)
# 쿼럼 큐. 복제되는 큐로, RabbitMQ 4에서 권하는 종류다. topic exchange에 묶어야 브로커가 countdown을 대신 기다린다.
# 작업을 보내는 앱마다 이 큐를 같은 인자로 적어야 한다. Celery는 보내는 앱 자신의 큐 설정을 보고 정하기 때문이다.
QUORUM_QUEUE = Queue(
    "practice12.quorum",
    Exchange("practice12.topic", type="topic"),
    routing_key="practice12.quorum",
    queue_arguments={"x-queue-type": "quorum"},
)
app.conf.update(
    task_queues=[PRIORITY_QUEUE, QUORUM_QUEUE],
    task_default_queue="practice12",
    # 풀 프로세스도 하나, 받아 두는 메시지도 하나다. 무엇이 먼저 실행되는지가 눈에 보이게 한다.
    worker_concurrency=1,
    worker_prefetch_multiplier=1,
)

# 작업이 시작할 때 남기는 실행 기록(Redis 목록 practice12:journal:<run>). 이 실습의 세 앱이 함께 쓴다.
# call_tasks 와 테스트는 이것으로 작업이 시작한 순서와 때와 횟수를 읽는다.
journal = Journal("practice12")


@app.task(ignore_result=True)
def note(run, label):
    journal.write(run, label)


@app.task(ignore_result=True)
def hold(run, label, seconds):
    # 기본값인 시작 시 ack. 워커의 prefetch 자리가 비어 다음 메시지를 받아 둔다.
    journal.write(run, label)
    time.sleep(seconds)


@app.task(ignore_result=True, acks_late=True)
def hold_acks_late(run, label, seconds):
    # 완료 후 ack. 실행되는 동안 prefetch 자리를 차지하므로 다음 메시지는 브로커의 큐에서 우선순위대로 기다린다.
    journal.write(run, label)
    time.sleep(seconds)
