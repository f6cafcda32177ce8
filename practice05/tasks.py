"""practice05 — 큐 라우팅: 작업을 골라 담는 큐, 그 큐만 맡는 워커

무엇을 배우나: 브로커에 큐를 여러 개 선언하는 법(task_queues)을 배운다. 작업마다 어느 큐로 갈지 정하고
(task_routes), 부를 때 바꾸고(apply_async(queue=...)), 워커마다 맡을 큐를 고른다(--queues). 큐를 나누는 이유는
느린 작업이 쌓여도 급한 작업이 기다리지 않게 하려는 것이다.

실행 방법 (프로젝트 폴더에서, 터미널 세 개):
    터미널 1:  celery -A practice05.tasks worker --queues=high --hostname=worker-high@%h --loglevel=info
    터미널 2:  celery -A practice05.tasks worker --queues=low --hostname=worker-low@%h --loglevel=info
    터미널 3:  python -m practice05.call_tasks
"""

import time

from celery import Celery
from kombu import Exchange, Queue

from global_config import RABBITMQ_URL, REDIS_URL

SLOW_SECONDS = 1  # 느린 보고서 작업 하나의 길이
BACKLOG = 3  # low 큐에 쌓아 둘 느린 작업 수

# 아무 워커도 소비하지 않는 큐와, call_tasks 가 그 큐로 보낸 작업을 기다려 볼 시간(초).
UNWATCHED_QUEUE = "practice05_nobody"
UNWATCHED_WAIT_SECONDS = 1
# 워커 두 종류의 노드 이름(--hostname=worker-high@%h). lesson.py 의 워커 명령도 이 이름을 쓴다.
WORKER_KINDS = ("worker-high", "worker-low")


app = Celery("practice05", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    # 브로커에 선언할 큐. 큐마다 자기 exchange와 routing key를 준다. Queue("high") 처럼 exchange를 빼면
    # 기본 큐(low)와 같은 이름의 exchange에 묶여, 그 exchange로 보낸 메시지가 두 큐에 모두 들어간다.
    task_queues=(
        Queue("high", Exchange("high", type="direct"), routing_key="high"),
        Queue("low", Exchange("low", type="direct"), routing_key="low"),
    ),
    # 경로가 정해지지 않은 작업이 가는 큐.
    task_default_queue="low",
    task_default_exchange="low",
    task_default_routing_key="low",
    # 작업 이름 → 큐. 데코레이터의 @app.task(queue=...) 대신 이렇게 한 곳에 모은다.
    task_routes={
        "practice05.tasks.send_alert": {"queue": "high"},
        "practice05.tasks.build_report": {"queue": "low"},
    },
    # 워커 하나에 풀 프로세스 하나를 두고, 미리 가져오는 메시지도 하나로 한다. 그러면 느린 작업이 쌓이는 모습이
    # 잘 보이고, 워커가 실행하지도 못할 메시지를 붙잡아 두지 않는다(README의 "prefetch").
    worker_concurrency=1,
    worker_prefetch_multiplier=1,
)


def where(task):
    """이 작업을 실행한 워커와, 메시지가 거쳐 온 exchange/routing key."""
    info = task.request.delivery_info or {}
    return {
        "worker": task.request.hostname,
        "exchange": info.get("exchange"),
        "routing_key": info.get("routing_key"),
        "finished_at": time.time(),
    }


@app.task(bind=True)
def send_alert(self, text):
    # task_routes 가 high로 보낸다.
    return {"text": text, **where(self)}


@app.task(bind=True)
def build_report(self, seconds=0):
    # task_routes 가 low로 보낸다. seconds 만큼 걸리는 느린 작업이 될 수 있다.
    time.sleep(seconds)
    return where(self)


@app.task(bind=True)
def cleanup(self):
    # 경로가 없다: task_default_queue(low)로 간다.
    return where(self)


# 헬퍼. 호출하는 쪽(call_tasks, 테스트)이 where() 의 답에서 워커의 종류를 읽는다.
def worker_kind(place):
    """'worker-high-3f2a1c@host' 나 'worker-high@host' → 'worker-high'."""
    name = place["worker"].split("@")[0]
    return next((kind for kind in WORKER_KINDS if name.startswith(kind)), name)
