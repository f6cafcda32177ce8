"""practice10 — 실행 중인 일 다루기: revoke, rate_limit, 풀과 동시성

무엇을 배우나: revoke는 보낸 작업(task)을 취소한다. 아직 실행되지 않은 작업은 워커가 버리고, 실행 중인 작업은
terminate=True 로 멈춘다. 멈출 수 있는 풀은 prefork, gevent, eventlet이다. 취소 목록이 워커의 메모리에만 있다는
한계도 본다. rate_limit 은 작업마다 실행 속도를 제한하되, 워커마다 따로 건다. 차례를 기다리는 작업도 prefetch
자리를 차지한다. 끝으로 워커의 풀(prefork, threads, solo)과 --concurrency, --autoscale 을 본다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice10.tasks worker --loglevel=info
    터미널 2:  python -m practice10.call_tasks
"""

import time

from celery import Celery

from course import Journal
from global_config import RABBITMQ_URL, REDIS_URL

COUNTDOWN_SECONDS = 2  # 취소할 작업을 미뤄 두는 시간
LONG_SECONDS = 30  # terminate로 멈출 작업이 하려던 길이. 끝까지 기다리지는 않는다
RATE = "5/s"  # limited의 rate_limit
RATE_PER_SECOND = 5
RATE_TASKS = 10  # rate_limit 을 재려고 보내는 작업 수. 5/s 면 약 2초 걸린다


app = Celery("practice10", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice10",
)

# 작업이 시작하고 끝날 때 남기는 실행 기록(Redis 목록 practice10:journal:<run>). call_tasks 와 테스트가 읽는다.
journal = Journal("practice10")


@app.task(bind=True)
def work(self, run, seconds=0):
    try:
        # "시작"도 try 안에서 적는다. 호출하는 쪽은 이 기록을 보고 terminate를 보내는데, 그 terminate가 기록을
        # 마치기 전에 닿아도 finally가 실행되게 하려는 것이다.
        journal.write(run, "시작")
        time.sleep(seconds)
        journal.write(run, "끝")
    except BaseException as exc:
        # revoke(terminate=True) 가 작업 안에서 무엇으로 나타나는지 남긴다.
        # prefork는 SIGTERM을 보내므로 SystemExit이고, gevent는 greenlet을 죽이므로 GreenletExit이다.
        journal.write(run, type(exc).__name__)
        raise
    finally:
        # 어느 쪽이든 예외라서 finally는 실행된다.
        journal.write(run, "finally")
    return self.request.hostname  # 이 작업을 실행한 워커의 노드 이름


@app.task(rate_limit=RATE)
def limited(run):
    journal.write(run, "실행")


@app.task
def crunch(n):
    # CPU를 쓰는 일. 풀 프로세스 하나가 코어 하나를 차지한다.
    return sum(i * i for i in range(n))


@app.task
def wait_io(seconds):
    # 네트워크나 디스크처럼 기다리기만 하는 일. 기다리는 동안 CPU를 쓰지 않는다.
    time.sleep(seconds)
    return seconds
