"""practice14 — 여러 대로: RabbitMQ 클러스터, 멈춘 워커, 끊긴 연결

무엇을 배우나: 워커가 죽지 않고 멈추기만 하면(오래 걸리는 GC, VM 이전, docker compose pause) RabbitMQ는
heartbeat가 끊긴 것을 보고 알아챈다. 그러면 RabbitMQ는 그 워커의 연결을 닫고, ack 되지 않은 acks_late 작업을 다른
워커에 재전달한다. 멈췄던 워커는 깨어나면 같은 작업을 마저 끝내지만 ack 하지 못한다(Couldn't ack). 그래서 작업은
두 번 실행된다. worker_cancel_long_running_tasks_on_connection_loss=True 면 깨어난 워커가 작업을 끝내지 않고 취소한다.
노드 세 개로 된 RabbitMQ 클러스터에서 쿼럼 큐의 리더 노드를 멈추는 실험은 README의 "직접 해 보기"에 있다.

실행 방법 (프로젝트 폴더에서). call_tasks 가 워커 둘을 직접 띄우고, 하나를 멈췄다가 깨운다:
    터미널 1:  python -m practice14.call_tasks
"""

import os
import time

from celery import Celery

from course import Journal
from global_config import RABBITMQ_URL, REDIS_URL

# 워커가 브로커와 주고받는 AMQP heartbeat의 간격. Celery의 기본값은 120초인데, 멈춘 워커를 빨리 알아채도록 줄였다.
HEARTBEAT_SECONDS = 2
WORK_SECONDS = 3  # 작업 하나가 일하는 시간. 멈춰 있던 시간은 넣지 않는다
STEP_SECONDS = 0.1  # 작업이 일하는 시간을 나누는 단위. 멈췄다 깨어나면 남은 단위만큼 마저 일한다

# 연결이 끊겼을 때 실행 중인 acks_late 작업을 취소할지 정한다. Celery 5.7의 기본값은 False다.
# 워커를 띄울 때 환경 변수 PRACTICE14_CANCEL_ON_LOSS=1 을 주면 켜진다.
CANCEL_ON_LOSS = os.environ.get("PRACTICE14_CANCEL_ON_LOSS") == "1"

app = Celery("practice14", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice14",
    # 워커의 컨슈머 연결과 이벤트 연결에 걸린다. 작업을 보내는 쪽은 heartbeat 없이 연결한다.
    broker_heartbeat=HEARTBEAT_SECONDS,
    # 풀 프로세스는 하나이고, 미리 받아 두는 메시지도 하나다. 그래서 멈춘 워커가 쥔 작업은 보낸 작업 하나뿐이다.
    worker_concurrency=1,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=CANCEL_ON_LOSS,
)

# 작업이 시작할 때와 끝날 때 남기는 실행 기록(Redis 목록 practice14:journal:<run>).
# "시작"의 수는 실행 횟수이고, "끝"의 수는 효과가 난 횟수다.
journal = Journal("practice14")


@app.task(bind=True, acks_late=True)
def work(self, run, seconds=WORK_SECONDS):
    # 완료 후 ack. 작업이 끝나야 메시지를 지우므로, 그 전에 연결이 끊기면 RabbitMQ가 메시지를 재전달한다.
    journal.write(run, "시작", task_id=self.request.id)
    for _ in range(round(seconds / STEP_SECONDS)):
        time.sleep(STEP_SECONDS)
    journal.write(run, "끝")
    return os.getpid()
