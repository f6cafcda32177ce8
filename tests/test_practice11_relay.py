"""practice11 README: 릴레이와 publisher confirms — 브로커가 받지 않은 메시지를 보냈다고 적는가.

practice11 큐를 아무도 소비하지 않아야 "메시지가 큐에 있는가"를 셀 수 있다. 그래서 이 모듈의 워커는 릴레이만 도는
따로 된 큐를 소비한다(test_practice11 의 모듈 워커와 섞이지 않게 모듈을 나눴다).
"""

from __future__ import annotations

import select
import subprocess
import sys
import textwrap
import uuid

import pytest
import sqlalchemy
from amqp.exceptions import NotFound
from celery import Celery
from kombu import Exchange, Queue
from kombu.exceptions import OperationalError
from sqlalchemy.orm import Session

import global_config
from course import wait_until
from playground import PROJECT_ROOT
from playground.broker import delete_queue, queue_counts
from practice11.tasks import (
    MISSING_EXCHANGE,
    add_to_outbox,
    app,
    create_tables,
    discard_unsent,
    engine,
    exchange_exists,
    insert_order,
    relay_outbox,
    ship_express,
    ship_once,
    shipments,
    unsent,
)
from tests import WAIT_SECONDS

LESSON = "practice11"
# 이 모듈의 테스트들은 릴레이 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)
RELAY_QUEUE = "practice11.relay"
WORKER_OPTIONS = {"queues": [RELAY_QUEUE]}  # 릴레이만 실행하는 워커. practice11 큐는 아무도 소비하지 않는다
LESSON_QUEUE = app.conf.task_default_queue


@pytest.fixture(scope="module", autouse=True)
def _tables():
    create_tables()


@pytest.fixture
def outbox(worker):
    """보내지 않은 아웃박스 행이 하나도 없는 상태에서 시작하고, 주문 + 아웃박스 행을 만드는 함수를 넘긴다."""
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DELETE FROM practice11_outbox WHERE sent_at IS NULL"))
    app.control.purge()
    made = []

    def order(task):
        with Session(engine) as session, session.begin():
            order_id = insert_order(session, f"relay-{uuid.uuid4().hex[:6]}")
            add_to_outbox(session, task, order_id)
        made.append(order_id)
        return order_id

    yield order
    for order_id in made:
        discard_unsent(order_id)
    app.control.purge()


def _relay(**options):
    return relay_outbox.apply_async(kwargs=options, queue=RELAY_QUEUE).get(timeout=WAIT_SECONDS, propagate=False)


def _waiting() -> int:
    return queue_counts(LESSON_QUEUE)[0]


def test_celery_does_not_ask_for_publisher_confirms_by_default():
    assert "confirm_publish" not in Celery("defaults", set_as_current=False).conf.broker_transport_options
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.connection.confirm_publish is False  # py-amqp 의 연결: 확인하지 않는다


def test_without_confirms_the_relay_marks_a_refused_message_sent_and_it_is_in_no_queue(outbox):
    assert exchange_exists(MISSING_EXCHANGE) is False
    order_id = outbox(ship_express)
    assert _waiting() == 0
    assert _relay(confirm=False) == 1  # 예외 없이 "보냈다"
    assert unsent(order_id) == 0  # 보냈다고 적었다
    assert _waiting() == 0  # 그러나 큐에는 아무것도 없다
    assert exchange_exists(MISSING_EXCHANGE) is False


def test_with_confirms_the_relay_sees_the_refusal_and_leaves_the_row_unsent(outbox, worker):
    order_id = outbox(ship_express)
    error = _relay()
    assert isinstance(error, NotFound)
    assert unsent(order_id) == 1  # 롤백: 다음 릴레이가 다시 보낸다
    worker.wait_for_log(rf"NOT_FOUND - no exchange '{MISSING_EXCHANGE}'", WAIT_SECONDS)


def test_once_the_route_exists_the_next_relay_sends_the_row_it_kept(outbox):
    order_id = outbox(ship_express)
    assert isinstance(_relay(), NotFound)
    # 경로를 고친다: 없던 exchange를 선언하고 practice11 큐에 묶는다. 테스트가 끝나면 다시 지운다.
    fixed = Queue(LESSON_QUEUE, Exchange(MISSING_EXCHANGE), routing_key=LESSON_QUEUE)
    with app.connection_for_write() as connection:
        fixed(connection.default_channel).declare()
    try:
        assert _relay() == 1
        assert unsent(order_id) == 0
        assert _waiting() == 1  # 이번에는 큐에 있다
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.exchange_delete(MISSING_EXCHANGE)
    assert exchange_exists(MISSING_EXCHANGE) is False


def test_one_refused_row_rolls_back_the_whole_batch_so_rows_already_sent_go_again(outbox):
    good = outbox(ship_once)
    bad = outbox(ship_express)
    assert isinstance(_relay(), NotFound)
    assert (unsent(good), unsent(bad)) == (1, 1)  # 한 트랜잭션: 이미 보낸 행도 보내지 않은 것으로 남는다
    assert _waiting() == 1  # 그런데 good의 메시지는 이미 큐에 있다
    discard_unsent(bad)
    assert _relay() == 1
    assert _waiting() == 2  # good을 한 번 더 보냈다: 받는 작업은 멱등해야 한다
    assert shipments(good) == 0  # (이 모듈에서는 아무도 practice11 큐를 소비하지 않는다)


def test_without_confirms_the_refusal_is_raised_by_the_next_message_on_the_connection(worker):
    # 거절은 그 메시지를 보낸 호출에서 나지 않는다. py-amqp 는 보내기 전에 이미 와 있는 프레임을 읽으므로, 브로커가
    # 채널을 닫았다는 답이 온 뒤에 같은 연결로 보내는 다음 메시지가 그 NotFound를 받는다.
    app.control.purge()
    with app.connection_for_write() as connection:
        app.send_task(ship_express.name, args=(1,), connection=connection)  # 거절되지만 예외 없음
        # 브로커가 채널을 닫는다는 답(Channel.Close)이 소켓에 도착하기를 기다린다. 읽지는 않는다.
        sock = connection.connection.sock
        wait_until(lambda: select.select([sock], [], [], 0)[0], "브로커가 보낸 Channel.Close", WAIT_SECONDS)
        with pytest.raises(NotFound, match=MISSING_EXCHANGE):
            app.send_task(ship_once.name, args=(2,), connection=connection)  # 잘못 없는 메시지가 오류를 받는다
    assert _waiting() == 0  # 그 메시지도 가지 않았다


def test_broker_transport_options_turn_confirms_on_for_every_publish_of_an_app():
    confirming = Celery("practice11-confirming", broker=global_config.RABBITMQ_URL, set_as_current=False)
    confirming.conf.update(
        task_default_queue=LESSON_QUEUE,
        task_routes=app.conf.task_routes,
        broker_transport_options={"confirm_publish": True},
    )
    try:
        with pytest.raises(NotFound, match=MISSING_EXCHANGE):
            confirming.send_task(ship_express.name, args=(1,))
    finally:
        # 연결 풀은 닫지 않는다. kombu는 주소와 전송 옵션이 같은 앱들에 한 프로세스 안에서 같은 풀을 준다
        # (practice16의 앱도 confirm_publish=True 다). 닫힌 풀에서는 어느 앱도 연결을 꺼내지 못한다. 거절을 받은
        # 뒤에도 그 풀의 연결로 다시 보낼 수 있다.
        confirming.close()


def _full_queue() -> Queue:
    """길이 제한(1)에 닿은 큐: 새 메시지를 받지 않고 nack 한다(x-overflow: reject-publish)."""
    name = f"practice11.full-{uuid.uuid4().hex[:6]}"
    queue = Queue(
        name, Exchange(name), routing_key=name, queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    with app.connection_for_write() as connection:
        bound = queue(connection.default_channel)
        bound.declare()
        connection.Producer().publish({"first": True}, exchange=name, routing_key=name)
    return queue


@pytest.mark.parametrize("confirm", [False, True], ids=["without_confirms", "with_confirms"])
def test_a_full_queue_nacks_and_only_confirms_notice(confirm):
    queue = _full_queue()
    try:
        with app.connection_for_write(transport_options={"confirm_publish": confirm}) as connection:
            if confirm:
                with pytest.raises(OperationalError) as refused:
                    app.send_task(ship_once.name, args=(1,), queue=queue, connection=connection)
                assert type(refused.value.__cause__).__name__ == "MessageNacked"
            else:
                app.send_task(ship_once.name, args=(1,), queue=queue, connection=connection)  # 조용히 사라진다
        assert queue_counts(queue.name) == (1, 0)  # 처음 메시지 하나뿐
    finally:
        delete_queue(queue.name)


def test_confirms_do_not_catch_a_message_no_queue_is_bound_for():
    # 선언해 둔 큐가 지워지면 메시지는 라우팅되지 않는다(kombu는 이 연결에서 선언한 것을 기억하고 다시 선언하지
    # 않는다).
    # 브로커는 그 메시지를 버리고도 ack 한다: confirms는 "맡았다"이지 "큐에 들어갔다"가 아니다.
    name = f"practice11.gone-{uuid.uuid4().hex[:6]}"
    queue = Queue(name, Exchange(name), routing_key=name)
    with app.connection_for_write(transport_options={"confirm_publish": True}) as connection:
        app.send_task(ship_once.name, args=(1,), queue=queue, connection=connection)
        assert queue_counts(name) == (1, 0)
        delete_queue(name)
        app.send_task(ship_once.name, args=(2,), queue=queue, connection=connection)  # 예외 없음
    assert queue_counts(name) is None  # 큐도, 메시지도 없다
    with app.connection_for_write() as connection:
        connection.default_channel.exchange_delete(name)


def test_a_process_that_dies_after_the_commit_and_before_sending_loses_the_task():
    # after_commit 으로 보내도, 커밋과 보내기 사이에 프로세스가 죽으면 작업은 사라진다: 아웃박스가 필요한 까닭.
    app.control.purge()
    script = textwrap.dedent(
        """
        import os, sys
        from sqlalchemy import event
        from sqlalchemy.orm import Session
        from practice11.tasks import engine, insert_order, send_after_commit, ship

        with Session(engine) as session:
            send_after_commit(session, ship, -2)
            # send_after_commit 의 리스너보다 먼저 도는 리스너: 커밋한 직후에 프로세스가 죽는다.
            event.listen(session, "after_commit", lambda s: (print(insert_id, flush=True), os._exit(0)), insert=True)
            with session.begin():
                insert_id = insert_order(session, "lost")
        sys.exit(1)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    order_id = int(done.stdout.strip())
    with engine.connect() as conn:
        committed = conn.execute(
            sqlalchemy.text("SELECT count(*) FROM practice11_orders WHERE id = :id"), {"id": order_id}
        )
        assert committed.scalar_one() == 1  # 주문은 커밋되었고
    assert _waiting() == 0  # 작업은 보내지 않았다
