"""practice12의 두 번째 앱. Redis를 브로커로 쓴다. 지금까지 Redis는 결과 백엔드로만 썼다.

Redis에는 RabbitMQ의 ack가 없다. kombu는 받아 간 메시지를 'unacked' 해시에 적어 둔다. visibility_timeout 이
지나도록 ack가 없으면 받아 간 워커가 죽었다고 보고 메시지를 큐로 되돌린다. 그래서 그보다 오래 기다리는
countdown/ETA 작업이나 그보다 오래 실행되는 acks_late 작업은 두 번 이상 실행된다. visibility_timeout 은 가장 긴
ETA보다도, 가장 긴 작업보다도 길게 둬야 한다.
'unacked' 해시는 Redis 데이터베이스마다 하나다. 그래서 같은 데이터베이스를 쓰는 워커 가운데 가장 짧은
visibility_timeout 이 모든 앱의 메시지에 적용된다. 이 앱의 짧은 2초는 다른 Redis 브로커 앱과 같은 데이터베이스를
쓰면 안 된다.
우선순위는 거꾸로다. 0이 가장 먼저이고, 우선순위를 주지 않은 작업도 0으로 센다.

실행 방법 (프로젝트 폴더에서, 터미널 세 개):
    터미널 1:  celery -A practice12.tasks worker --loglevel=info
    터미널 2:  celery -A practice12.redis_tasks worker --loglevel=info
    터미널 3:  python -m practice12.call_tasks
"""

import time

from celery import Celery

from global_config import REDIS_URL
from practice12.tasks import journal  # 실행 기록은 tasks.py 의 것 하나를 함께 쓴다

VISIBILITY_TIMEOUT_SECONDS = 2  # ack 없이 이만큼 지난 메시지는 큐로 되돌아간다
RESTORE_CHECK_SECONDS = 1  # 되돌릴 메시지를 찾는 간격. kombu 기본값으로는 약 100초마다 찾는다

app = Celery("practice12.redis_tasks", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice12.redis",
    broker_transport_options={
        # 일부러 짧게 둔다. 기본값은 3600초(1시간)다.
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        # kombu는 unacked_restore_interval(10초)마다 부르되, unacked_restore_throttle(10)번에 한 번만 실제로 찾는다.
        # 둘 다 1이면 매초 찾는다. 그러면 중복이 운에 맡겨지지 않고 매번 보인다.
        "unacked_restore_interval": RESTORE_CHECK_SECONDS,
        "unacked_restore_throttle": 1,
        # 우선순위 0~9를 하나하나 따로 다룬다. 기본값은 0, 3, 6, 9 네 단계로 묶는다.
        "priority_steps": list(range(10)),
    },
    worker_concurrency=1,
    worker_prefetch_multiplier=1,
)


@app.task(ignore_result=True)
def note(run, label):
    journal.write(run, label)


@app.task(ignore_result=True, acks_late=True)
def hold_acks_late(run, label, seconds):
    journal.write(run, label)
    time.sleep(seconds)
