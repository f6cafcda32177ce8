"""practice08 — 워커가 죽으면: acks_late, reject_on_worker_lost, 멱등성

무엇을 배우나: 브로커는 메시지를 언제 지우는가(ack). 작업을 실행하던 프로세스가 죽으면(OOM 킬러, kill -9,
C 확장의 충돌) 그 메시지는 어떻게 되는가. 기본값(시작 시 ack)이면 작업은 FAILURE(WorkerLostError)로 끝나고 다시
실행되지 않는다. acks_late=True 만으로는 바뀌지 않는다. reject_on_worker_lost=True 를 더해야 메시지가 큐로 돌아가
다시 실행된다. 다시 실행될 수 있는 작업은 멱등하게, 곧 두 번 실행돼도 효과가 한 번인 것처럼 써야 한다.

작업은 자기 프로세스를 스스로 죽여(os.kill(os.getpid(), SIGKILL)) 충돌을 흉내 낸다. run_id 마다 첫 실행에서만
죽으므로, 재전달된 실행은 끝까지 간다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice08.tasks worker --loglevel=info
    터미널 2:  python -m practice08.call_tasks
"""

import os
import signal
import time

import psycopg2
from celery import Celery
from celery.exceptions import Reject
from kombu import Exchange, Queue

from course import Journal
from global_config import POSTGRES_URL, RABBITMQ_URL, REDIS_URL

WORK_SECONDS = 0.3  # 작업 하나가 일하는 시간. 죽는 작업은 이만큼 일한 뒤 죽는다.
RETRY_DELAY_SECONDS = 1  # retry_on_worker_lost 의 재시도 간격 (default_retry_delay)
POISON_RUNS = 3  # 클래식 큐에서 매번 실패하는 작업이 이만큼 되돌아오는 것을 보고 revoke로 끊는다
DELIVERY_LIMIT = 2  # 쿼럼 큐의 x-delivery-limit. 이만큼 되돌아온 뒤에는 dead-letter 큐로 간다(RabbitMQ 4의 기본값은 20)


# 배달 한도를 넘긴 메시지가 가는 곳. 워커는 이 큐를 소비하지 않는다. 사람이 들여다보고 고칠 메시지를 모아 둔다.
dead_letters = Queue("practice08.dead", Exchange("practice08.dead", type="direct"), routing_key="practice08.dead")

app = Celery("practice08", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice08",
    task_queues=(
        Queue("practice08", Exchange("practice08", type="direct"), routing_key="practice08"),
        # 쿼럼 큐는 메시지마다 몇 번 되돌아왔는지(delivery-count) 센다. 한도를 넘기면 버리거나, dead-letter
        # exchange가 있으면 그리로 보낸다. 클래식 큐에는 이런 한도가 없다.
        Queue(
            "practice08.quorum",
            Exchange("practice08.quorum", type="direct"),
            routing_key="practice08.quorum",
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": dead_letters.exchange.name,
                "x-dead-letter-routing-key": dead_letters.routing_key,
            },
        ),
    ),
    # 실행을 시작한 작업은 STARTED로 적는다. 워커째 죽으면 그 작업의 상태는 STARTED에서 멈춘다.
    task_track_started=True,
)

# 작업이 실행될 때마다 남기는 실행 기록(Redis 목록 practice08:journal:<run_id>). 줄마다 pid가 있고, 작업에 따라
# 재전달 여부(redelivered)와 재시도 횟수(retries)도 있다. 줄 수는 몇 번째 실행인지 세는 카운터도 된다.
journal = Journal("practice08")


def die():
    """이 프로세스를 곧바로 죽인다. OOM 킬러나 kill -9 와 같아서 정리 코드도 결과 기록도 실행되지 않는다."""
    os.kill(os.getpid(), signal.SIGKILL)


def _work(task, run_id, crash, seconds):
    request = task.request  # 이 실행의 메시지: 재전달인가(redelivered), 몇 번째 재시도인가(retries)
    count = journal.write(run_id, task.name, redelivered=request.delivery_info["redelivered"], retries=request.retries)
    time.sleep(seconds)
    if crash and count == 1:
        die()
    return f"끝남: {count}번째 실행"


# 같은 일을 하는 작업 넷. 다른 것은 메시지를 언제 ack하는지와, 프로세스가 죽었을 때 무엇을 하는지뿐이다.


@app.task(bind=True)
def early_ack(self, run_id, crash=True, seconds=WORK_SECONDS):
    # 시작 시 ack(기본값). 풀 프로세스가 메시지를 받는 순간 ack한다. 죽으면 FAILURE(WorkerLostError)로 끝나고 다시
    # 실행되지 않는다.
    return _work(self, run_id, crash, seconds)


@app.task(bind=True, acks_late=True)
def late_ack(self, run_id, crash=True, seconds=WORK_SECONDS):
    # 완료 후 ack. 그래도 프로세스가 죽으면 작업의 acks_on_failure=True 에 따라 ack하고 FAILURE로 끝난다.
    return _work(self, run_id, crash, seconds)


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def late_ack_requeued(self, run_id, crash=True, seconds=WORK_SECONDS):
    # 프로세스가 죽으면 메시지를 reject(requeue=True)한다. 메시지는 큐로 돌아가 재전달된다(redelivered=True).
    return _work(self, run_id, crash, seconds)


@app.task(bind=True, retry_on_worker_lost=True, default_retry_delay=RETRY_DELAY_SECONDS, max_retries=3)
def retried_on_lost(self, run_id, crash=True, seconds=WORK_SECONDS):
    # Celery 5.7의 설정. 프로세스가 죽으면 self.retry() 처럼 다시 보낸다. retries가 1 늘고 max_retries 가 적용된다.
    return _work(self, run_id, crash, seconds)


# 매번 실패하며 큐로 돌아가는 작업(poison message). 둘 다 acks_late 라 끝나기 전에는 ack하지 않는다.
# - poison: 실행할 때마다 프로세스를 죽인다(세그폴트나 OOM처럼). reject_on_worker_lost 라 매번 큐로 돌아간다.
# - bounce: 실행할 때마다 Reject(requeue=True) 로 스스로 큐에 되돌린다. 브로커가 보기에는 poison과 같은 reject다.
# 클래식 큐는 되돌아온 횟수를 세지 않으므로 누가 끊기 전까지 영원히 반복된다. 쿼럼 큐(practice08.quorum)로 보내면
# DELIVERY_LIMIT 번 되돌아온 뒤 RabbitMQ가 dead-letter 큐로 옮긴다.


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def poison(self, run_id):
    journal.write(run_id, self.name, redelivered=self.request.delivery_info["redelivered"])
    die()


@app.task(bind=True, acks_late=True)
def bounce(self, run_id):
    journal.write(run_id, self.name, redelivered=self.request.delivery_info["redelivered"])
    raise Reject("이 메시지는 처리할 수 없습니다", requeue=True)


def declare_dead_letters():
    """dead-letter 큐를 만든다(이미 있으면 그대로). 메시지가 한도를 넘기기 전에 있어야 그리로 간다."""
    with app.connection_for_write() as conn:
        dead_letters(conn.default_channel).declare()


def dead_lettered(task_id):
    """dead-letter 큐에서 task_id 의 메시지를 꺼내 그 헤더(x-death 포함)를 돌려준다. 없으면 None.

    다른 메시지는 그대로 둔다. 모두 받아 본 뒤 찾는 메시지만 ack하고 나머지는 큐로 되돌린다.
    """
    found, others = None, []
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(dead_letters.name, no_ack=False)) is not None:
            if found is None and message.headers.get("id") == task_id:
                channel.basic_ack(message.delivery_tag)
                found = message.headers
            else:
                others.append(message)
        for message in others:
            channel.basic_reject(message.delivery_tag, requeue=True)
    return found


# 결제처럼 두 번 일어나면 안 되는 효과. 효과는 PostgreSQL에 남긴다.
# - practice08_payments: (run, payment_id) 가 기본 키인 표. INSERT … ON CONFLICT DO NOTHING이면 두 번 실행돼도
#   한 행이다.
# - practice08_charges: 키가 없는 표. 두 번 실행되면 두 행이 남는다. 멱등하지 않은 효과다.
# - practice08_executions: 실행마다 한 행을 남겨 실행 횟수를 센다.
DSN = POSTGRES_URL.removeprefix("db+").replace("+psycopg2", "")
TABLES = """
CREATE TABLE IF NOT EXISTS practice08_payments (run text, payment_id int, PRIMARY KEY (run, payment_id));
CREATE TABLE IF NOT EXISTS practice08_charges (run text, payment_id int);
CREATE TABLE IF NOT EXISTS practice08_executions (run text, payment_id int, pid int, redelivered boolean);
"""


def database():
    return psycopg2.connect(DSN)


def create_tables():
    """효과를 남길 표를 만든다(이미 있으면 그대로). 여러 프로세스가 함께 불러도 된다."""
    with database() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(8)")  # CREATE TABLE IF NOT EXISTS 끼리의 경합을 막는다
        cur.execute(TABLES)
    conn.close()


def _charge(task, run, payment_id, guarded, crash_after_commit, seconds):
    redelivered = bool(task.request.delivery_info.get("redelivered"))
    time.sleep(seconds)  # 결제 준비(외부 API 호출 같은 일). 여기서 죽으면 아무것도 남지 않는다.
    with database() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO practice08_executions VALUES (%s, %s, %s, %s)", (run, payment_id, os.getpid(), redelivered)
        )
        if guarded:
            cur.execute("INSERT INTO practice08_payments VALUES (%s, %s) ON CONFLICT DO NOTHING", (run, payment_id))
        else:
            cur.execute("INSERT INTO practice08_charges VALUES (%s, %s)", (run, payment_id))
    conn.close()  # with 블록을 나오며 커밋했다
    if crash_after_commit and not redelivered:
        die()  # 효과는 커밋했지만 아직 ack하지 않았다. 재전달되면 한 번 더 실행된다
    return payment_id


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def charge(self, run, payment_id, guarded=True, crash_after_commit=False, seconds=WORK_SECONDS):
    # 안전한 설정. 완료 후 ack하고, 죽으면 큐로 돌아간다. 다시 실행될 수 있으므로 효과는 guarded(멱등)여야 한다.
    return _charge(self, run, payment_id, guarded, crash_after_commit, seconds)


@app.task(bind=True)
def charge_early_ack(self, run, payment_id, guarded=True, crash_after_commit=False, seconds=WORK_SECONDS):
    return _charge(self, run, payment_id, guarded, crash_after_commit, seconds)


@app.task(bind=True, acks_late=True)
def charge_late_ack(self, run, payment_id, guarded=True, crash_after_commit=False, seconds=WORK_SECONDS):
    return _charge(self, run, payment_id, guarded, crash_after_commit, seconds)


@app.task(bind=True)
def grow(self, run_id, megabytes, seconds=WORK_SECONDS):
    # 메모리를 잡은 채 일한다. --max-memory-per-child 는 이 작업이 끝난 뒤에야 풀 프로세스의 메모리를 본다.
    journal.write(run_id, self.name)
    ballast = bytearray(megabytes * 1024 * 1024)
    time.sleep(seconds)
    return len(ballast) // (1024 * 1024)


def effects(run):
    """run의 (멱등한 표의 결제 행 수, 키 없는 표의 결제 행 수, 실행 횟수)를 돌려준다."""
    with database() as conn, conn.cursor() as cur:
        counts = []
        for table in ("practice08_payments", "practice08_charges", "practice08_executions"):
            cur.execute(f"SELECT count(*) FROM {table} WHERE run = %s", (run,))  # 표 이름은 위의 셋 중 하나
            counts.append(cur.fetchone()[0])
    conn.close()
    return tuple(counts)
