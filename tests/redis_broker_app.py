"""테스트가 띄우는 두 번째 Redis 브로커 앱. practice12 README의 "unacked 해시는 데이터베이스마다 하나"를 보인다.

practice12.redis_tasks 와 같은 Redis 데이터베이스를 쓰지만, visibility_timeout 은 kombu의 기본값(3600초) 그대로다.
워커:  celery -A tests.redis_broker_app worker
"""

from celery import Celery

from global_config import REDIS_URL
from practice12.tasks import journal

app = Celery("tests.redis_broker_app", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice12.other-app",
    worker_concurrency=1,
    worker_prefetch_multiplier=1,
)


@app.task(ignore_result=True)
def note(run, label):
    journal.write(run, label)
