"""practice14의 클러스터 앱. RabbitMQ 노드 세 개에 주소 목록으로 연결하고, 쿼럼 큐와 클래식 큐를 하나씩 쓴다.

README의 "직접 해 보기"에서 쓴다. 클러스터는 docker compose --profile cluster up -d 로 띄운다.
    celery -A practice14.cluster_tasks worker --loglevel=info
"""

import time

from celery import Celery
from kombu import Exchange, Queue

from course import Journal
from global_config import RABBITMQ_CLUSTER_URLS, REDIS_URL

RECORD_SECONDS = 0.05  # 작업 하나가 일하는 시간. 노드를 멈추는 동안 큐에 작업이 남아 있게 한다

# 쿼럼 큐는 세 노드에 복제되고, 큐마다 그 큐를 맡는 리더 노드가 있다. 리더가 멈추면 남은 노드들이 새 리더를 뽑는다.
QUORUM_QUEUE = Queue(
    "practice14.quorum",
    Exchange("practice14.quorum"),
    routing_key="practice14.quorum",
    queue_arguments={"x-queue-type": "quorum"},
)
# 클래식 큐는 복제되지 않는다. 큐를 선언한 노드 하나에만 있다.
CLASSIC_QUEUE = Queue("practice14.classic", Exchange("practice14.classic"), routing_key="practice14.classic")

# 주소 여럿을 ; 로 이어 broker_url 로 주면 kombu는 앞 주소부터 연결한다. 끊기면 다음 주소로 넘어간다(round-robin).
app = Celery("practice14", broker=RABBITMQ_CLUSTER_URLS, backend=REDIS_URL)
# broker_heartbeat 는 기본값(120초)으로 둔다. RabbitMQ와 정해지는 간격은 60초다. 노드가 멈춘 뒤 다시 연결한
# 워커는 멈춘 노드에 native delayed delivery 설정을 다시 시도하는 15초 남짓 동안 heartbeat를 보내지 못한다.
# tasks.py 처럼 2초로 줄이면 RabbitMQ가 그사이에 새 연결마저 닫는다. 워커는 다시 연결하기만 되풀이하고 작업을
# 받지 못한다.
app.conf.update(
    task_queues=[QUORUM_QUEUE, CLASSIC_QUEUE],
    task_default_queue=QUORUM_QUEUE.name,
    # publisher confirms를 켠다. 브로커가 메시지를 받았다고 답해야 delay() 가 돌아온다. 그래서 노드가 멈추는 순간에
    # 보낸 메시지도 잃지 않고 다시 보낸다.
    broker_transport_options={"confirm_publish": True},
    worker_prefetch_multiplier=1,
)

# 작업이 실행될 때마다 남기는 실행 기록. 이 기록으로 실행된 수와 중복을 세어 보낸 수와 견준다.
journal = Journal("practice14")


@app.task(acks_late=True, ignore_result=True)
def record(run, number, seconds=RECORD_SECONDS):
    # 완료 후 ack. 노드가 멈춰 ack 하지 못한 작업은 재전달되어 한 번 더 실행될 수 있다. 이것을 중복으로 센다.
    time.sleep(seconds)
    journal.write(run, "실행", number=number)
