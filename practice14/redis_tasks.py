"""practice14의 Redis 브로커 앱. 네트워크가 끊겼다가 이어진 뒤에도 워커가 다시 소비하는지 보는 데 쓴다.

kombu가 ack 되지 않은 메시지를 적어 두는 'unacked' 해시는 Redis 데이터베이스마다 하나다. 그래서 global_keyprefix 로
키 이름 앞에 'practice14:' 를 붙여, practice12의 Redis 브로커 앱(visibility_timeout 2초)과 키를 나눈다.

celery -A practice14.redis_tasks worker --loglevel=info
"""

from celery import Celery

from course import Journal
from global_config import REDIS_URL

app = Celery("practice14", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice14.redis",
    broker_transport_options={"global_keyprefix": "practice14:"},
)

journal = Journal("practice14")


@app.task(ignore_result=True)
def note(run, label):
    journal.write(run, label)
