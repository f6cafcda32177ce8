"""practice13의 두 번째 앱. 같은 작업을 Redis 브로커로 보낸다. 배포 도중에 멈춘 워커의 메시지가 어떻게 되는지 본다.

Redis에는 ack가 없다. kombu는 워커가 받아 간 메시지를 'unacked' 해시에 적어 두고, ack하면 지운다(practice12).
- 워커가 스스로 멈추면(warm, soft, cold shutdown) kombu가 ack하지 않은 메시지를 멈추기 전에 큐로 되돌린다
  (kombu/transport/virtual/base.py 의 restore_unacked_once, Redis의 QoS.restore_at_shutdown=True).
- SIGKILL로 죽으면 되돌릴 틈이 없다. 메시지는 'unacked' 해시에 남아 있다가, 받아 간 때로부터 visibility_timeout 이
  지난 뒤에야 다른 워커가 큐로 되돌린다. 기본값은 3600초다.
'unacked' 해시는 Redis 데이터베이스마다 하나다. 이 앱은 global_keyprefix 로 키 이름 앞에 'practice13:' 을 붙여,
practice12의 Redis 브로커 앱(visibility_timeout 2초)과 키를 나눈다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice13.redis_tasks worker --loglevel=info
    터미널 2:  celery -A practice13.redis_tasks call practice13.redis_tasks.work_acks_late --args='["by-hand", 6]'
"""

import os

from celery import Celery

from global_config import REDIS_URL
from practice13.tasks import SOFT_SHUTDOWN_SECONDS, WORK_SECONDS, _work

VISIBILITY_TIMEOUT_SECONDS = 10  # ack 없이 이만큼 지난 메시지는 큐로 되돌아간다. 가장 긴 작업(WORK_SECONDS)보다 길다
RESTORE_CHECK_SECONDS = 1  # 되돌릴 메시지를 찾는 간격. kombu 기본값으로는 약 100초마다 찾는다
KEY_PREFIX = "practice13:"

app = Celery("practice13.redis_tasks", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice13.redis",
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        "unacked_restore_interval": RESTORE_CHECK_SECONDS,
        "unacked_restore_throttle": 1,
        "global_keyprefix": KEY_PREFIX,
    },
    worker_prefetch_multiplier=1,
    # tasks.py 와 같다. PRACTICE13_SOFT_SHUTDOWN_SECONDS=0 이면 soft shutdown 없이 곧바로 끊는다(cold shutdown).
    worker_soft_shutdown_timeout=float(os.environ.get("PRACTICE13_SOFT_SHUTDOWN_SECONDS", SOFT_SHUTDOWN_SECONDS)),
)


@app.task(ignore_result=True)
def work(run, seconds=WORK_SECONDS):
    _work(run, seconds)


@app.task(ignore_result=True, acks_late=True)
def work_acks_late(run, seconds=WORK_SECONDS):
    _work(run, seconds)
