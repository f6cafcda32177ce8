"""practice11 — 트랜잭션 경계: 커밋 전에 보낸 작업

무엇을 배우나: 웹 앱에서 가장 흔하고 조용한 버그를 본다. 트랜잭션 안에서 행을 넣고 커밋하기 전에 작업(task)을
보내면, 워커가 그 행을 찾을 때 행은 아직 커밋되지 않아 보이지 않는다. 작업은 "없음"을 보고도 SUCCESS로 끝난다.
고치는 법은 커밋한 뒤에 보내는 것이다. SQLAlchemy에서는 after_commit 이벤트를 쓰고, Django에서는 Celery의
delay_on_commit 을 쓴다. 더 튼튼한 방법은 아웃박스다. 행과 "보낼 작업" 행을 한 트랜잭션에 쓰고, 릴레이가 나중에
보낸다. 릴레이는 브로커가 메시지를 받았는지 publisher confirms로 확인한 뒤에야 보냈다고 적는다. Celery는 기본값으로는
확인하지 않는다. 행이 없을 때 작업이 할 일로 짧은 재시도도 본다.

실행 방법 (프로젝트 폴더에서, 터미널 두 개):
    터미널 1:  celery -A practice11.tasks worker --loglevel=info
    터미널 2:  python -m practice11.call_tasks
"""

import time

import sqlalchemy
from amqp.exceptions import NotFound
from celery import Celery
from celery.utils.log import get_task_logger
from sqlalchemy import event
from sqlalchemy.orm import Session

from global_config import POSTGRES_URL, RABBITMQ_URL, REDIS_URL

COMMIT_DELAY_SECONDS = 1  # 작업을 보낸 뒤 커밋하기까지 요청이 하는 나머지 일
RETRY_SECONDS = 1  # 행이 아직 없을 때 다시 해 보기까지
MAX_RETRIES = 3
# 아무도 선언하지 않은 exchange. ship_express 의 경로가 이곳을 가리킨다. exchange 이름을 잘못 적은 설정을 흉내 낸다.
MISSING_EXCHANGE = "practice11.express"
# 릴레이가 브로커의 답 하나를 기다리는 상한. 답이 오지 않으면 소켓 읽기가 이만큼 뒤에 실패한다.
BROKER_READ_TIMEOUT_SECONDS = 5


app = Celery("practice11", broker=RABBITMQ_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="practice11",
    # 일부러 틀린 경로 하나. ship_express 의 메시지는 없는 exchange로 간다. 브로커는 받지 않고 채널을 닫는다.
    task_routes={"practice11.tasks.ship_express": {"exchange": MISSING_EXCHANGE, "routing_key": "practice11"}},
)
logger = get_task_logger(__name__)

# 앱의 데이터는 주문, 배송, 아웃박스다. 배송은 기본 키로 주문마다 한 번만 남고, 아웃박스에는 보낼 작업을 적는다.
engine = sqlalchemy.create_engine(POSTGRES_URL.removeprefix("db+"), pool_pre_ping=True)
TABLES = """
CREATE TABLE IF NOT EXISTS practice11_orders (id serial PRIMARY KEY, item text NOT NULL);
CREATE TABLE IF NOT EXISTS practice11_shipments (order_id int PRIMARY KEY, shipped_at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS practice11_outbox (
    id serial PRIMARY KEY, task text NOT NULL, order_id int NOT NULL, sent_at timestamptz
);
"""


def create_tables():
    """표를 만든다. 이미 있으면 그대로 둔다. 여러 프로세스가 함께 불러도 된다."""
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(11)"))
        conn.execute(sqlalchemy.text(TABLES))


def order_exists(order_id):
    with engine.connect() as conn:
        found = conn.execute(sqlalchemy.text("SELECT 1 FROM practice11_orders WHERE id = :id"), {"id": order_id})
        return found.first() is not None


def insert_order(session, item):
    """session의 트랜잭션 안에서 주문 한 행을 넣고 id를 돌려준다. 커밋은 하지 않는다."""
    return session.execute(
        sqlalchemy.text("INSERT INTO practice11_orders (item) VALUES (:item) RETURNING id"), {"item": item}
    ).scalar_one()


@app.task
def ship(order_id):
    # 주문을 찾아 배송한다. 찾지 못해도 예외 없이 끝나므로 작업은 SUCCESS다. 그래서 조용한 버그다.
    found = order_exists(order_id)
    if not found:
        logger.warning("주문이 없습니다: %s. 커밋하기 전에 보낸 작업인가요?", order_id)
    return {"order_id": order_id, "found": found, "checked_at": time.time()}


@app.task(bind=True, max_retries=MAX_RETRIES)
def ship_or_retry(self, order_id):
    # 행이 아직 없으면 커밋 전일 수 있으니 짧게 기다렸다가 다시 해 본다. 끝내 없으면 실패로 끝난다.
    if not order_exists(order_id):
        raise self.retry(countdown=RETRY_SECONDS, exc=LookupError(f"주문이 없습니다: {order_id}"))
    return {"order_id": order_id, "found": True, "retries": self.request.retries}


@app.task
def ship_once(order_id):
    # 멱등한 배송. 같은 주문을 두 번 받아도 배송 행은 하나다(practice08).
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("INSERT INTO practice11_shipments (order_id) VALUES (:id) ON CONFLICT DO NOTHING"),
            {"id": order_id},
        )
    return order_id


@app.task
def ship_express(order_id):
    # 위의 task_routes 에서 경로가 틀려, 이 작업의 메시지는 어느 큐에도 닿지 않는다.
    return ship_once(order_id)


def send_after_commit(session, task, *args):
    """session이 커밋된 뒤에 task.delay(*args) 를 보낸다. 롤백되면 보내지 않는다.

    보낸 결과는 session.info["sent"] 에 둔다.
    """
    pending = session.info.setdefault("send_after_commit", [])
    pending.append((task, args))
    if not event.contains(session, "after_commit", _send_pending):
        event.listen(session, "after_commit", _send_pending)
        event.listen(session, "after_rollback", _drop_pending)


def _send_pending(session):
    sent = session.info.setdefault("sent", [])
    for task, args in session.info.pop("send_after_commit", []):
        sent.append(task.delay(*args))


def _drop_pending(session):
    session.info.pop("send_after_commit", None)


def add_to_outbox(session, task, order_id):
    """보낼 작업을 아웃박스에 적는다. 주문과 같은 트랜잭션이므로 둘 다 남거나 둘 다 없다."""
    session.execute(
        sqlalchemy.text("INSERT INTO practice11_outbox (task, order_id) VALUES (:task, :order_id)"),
        {"task": task.name, "order_id": order_id},
    )


@app.task
def relay_outbox(crash_before_mark=False, confirm=True):
    # 아직 보내지 않은 아웃박스 행을 보내고 보냈다고 적는다. 운영에서는 beat가 몇 초마다 부른다(practice07).
    # confirm=True 면 publisher confirms를 켠 연결로 보낸다. 메시지마다 브로커가 받았다고 답할 때까지 기다리고,
    # 받지 않으면 send_task 가 예외를 낸다. 그러면 트랜잭션이 롤백되어 행은 보내지 않은 채로 남는다.
    # confirm=False 는 Celery의 기본값이고, 비교하려고 둔다. 브로커가 받지 않아도 모른 채 보냈다고 적는다.
    # 보낸 뒤 적기 전에 죽으면 다음 릴레이가 한 번 더 보낸다. 그래서 받는 작업은 멱등해야 한다.
    # read_timeout 은 브로커의 답을 영영 기다리지 않게 한다. 브로커가 거절한 메시지 뒤에 연결을 닫으면 py-amqp 는
    # 채널을 닫고 Channel.CloseOk 를 기다리는데, RabbitMQ가 가끔 그 답을 보내지 않는다. 그러면 릴레이가 멈춘다.
    transport_options = {"confirm_publish": confirm, "read_timeout": BROKER_READ_TIMEOUT_SECONDS}
    with (
        app.connection_for_write(transport_options=transport_options) as connection,
        Session(engine) as session,
        session.begin(),
    ):
        rows = session.execute(
            sqlalchemy.text(
                "SELECT id, task, order_id FROM practice11_outbox WHERE sent_at IS NULL "
                "ORDER BY id FOR UPDATE SKIP LOCKED"
            )
        ).all()
        for row in rows:
            app.send_task(row.task, args=(row.order_id,), connection=connection)
        if crash_before_mark:
            raise RuntimeError("릴레이가 보낸 뒤, 보냈다고 적기 전에 죽었다")
        session.execute(
            sqlalchemy.text("UPDATE practice11_outbox SET sent_at = now() WHERE id = ANY(:ids)"),
            {"ids": [row.id for row in rows]},
        )
    return len(rows)


def discard_unsent(order_id):
    """order_id 의 보내지 않은 아웃박스 행을 지운다. 거절된 행은 고치거나 지우기 전까지 릴레이를 매번 실패시킨다."""
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("DELETE FROM practice11_outbox WHERE order_id = :id AND sent_at IS NULL"), {"id": order_id}
        )


def exchange_exists(name):
    """브로커에 그 이름의 exchange가 있는지 본다. passive 선언은 만들지 않고 묻기만 하며, 없으면 NotFound가 난다."""
    with app.connection_for_write() as connection:
        try:
            connection.default_channel.exchange_declare(name, "direct", passive=True)
        except NotFound:
            return False
    return True


def unsent(order_id):
    """order_id 의 아웃박스 행 가운데 아직 보내지 않은 수."""
    with engine.connect() as conn:
        return conn.execute(
            sqlalchemy.text("SELECT count(*) FROM practice11_outbox WHERE order_id = :id AND sent_at IS NULL"),
            {"id": order_id},
        ).scalar_one()


def shipments(order_id):
    with engine.connect() as conn:
        return conn.execute(
            sqlalchemy.text("SELECT count(*) FROM practice11_shipments WHERE order_id = :id"), {"id": order_id}
        ).scalar_one()
