"""practice11: 웹 요청 하나를 흉내 낸다. 트랜잭션 안에서 주문을 넣고, 작업을 보내고, 커밋한다. 언제 보내느냐가 전부다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice11.tasks worker --loglevel=info
그다음:                             python -m practice11.call_tasks
"""

import sys
import time

from sqlalchemy.orm import Session

from course import WAIT_SECONDS, Scenario, wait_until
from practice11.tasks import (
    COMMIT_DELAY_SECONDS,
    MISSING_EXCHANGE,
    add_to_outbox,
    app,
    create_tables,
    discard_unsent,
    engine,
    exchange_exists,
    insert_order,
    relay_outbox,
    send_after_commit,
    ship,
    ship_express,
    ship_once,
    ship_or_retry,
    shipments,
    unsent,
)

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect


def step_1_sent_before_the_commit():
    step("1. 버그: 커밋하기 전에 보내면 워커가 행을 보지 못합니다")
    with Session(engine) as session, session.begin():
        order_id = insert_order(session, "책")
        sent = ship.delay(order_id)  # 아직 커밋 전
        time.sleep(COMMIT_DELAY_SECONDS)  # 요청의 나머지 일
    committed_at = time.time()  # with 블록을 나오며 커밋했다
    seen = sent.get(timeout=WAIT_SECONDS)
    show(
        "ship.delay(order_id).get()['found']",
        seen["found"],
        False,
        note="워커 로그에 '주문이 없습니다' 경고가 남습니다",
    )
    show("작업이 확인한 시각 < 커밋한 시각", seen["checked_at"] < committed_at, True)
    show("그래도 state", sent.state, "SUCCESS", note="조용한 버그")


def step_2_sent_after_the_commit():
    step("2. 고치는 법: 커밋한 뒤에 보냅니다 (SQLAlchemy after_commit)")
    with Session(engine) as session:
        with session.begin():
            order_id = insert_order(session, "펜")
            send_after_commit(session, ship, order_id)
        (sent,) = session.info["sent"]
    show("커밋한 뒤 보낸 ship의 get()['found']", sent.get(timeout=WAIT_SECONDS)["found"], True)
    with Session(engine) as session:
        session.begin()
        insert_order(session, "잘못 넣은 주문")
        send_after_commit(session, ship, -1)
        session.rollback()
        show("롤백한 트랜잭션이 보낸 작업", session.info.get("sent", []), [], note="아무것도 보내지 않았습니다")


def step_3_the_outbox():
    step("3. 아웃박스: 주문과 '보낼 작업'을 한 트랜잭션에 쓰고, 릴레이가 나중에 보냅니다")
    with Session(engine) as session, session.begin():
        order_id = insert_order(session, "공책")
        add_to_outbox(session, ship_once, order_id)
    show("커밋 직후 보내지 않은 아웃박스 행", unsent(order_id), 1, note="여기서 프로세스가 죽어도 작업을 잃지 않습니다")
    relay_outbox.delay().get(timeout=WAIT_SECONDS)
    show("릴레이 실행 뒤 보내지 않은 아웃박스 행", unsent(order_id), 0)
    show("배송 행", wait_until(lambda: shipments(order_id), "릴레이가 보낸 ship_once 의 배송 행"), 1)


def step_4_retry_while_the_row_is_missing():
    step("4. 행이 아직 없으면 짧게 재시도합니다")
    with Session(engine) as session, session.begin():
        order_id = insert_order(session, "연필")
        retried = ship_or_retry.delay(order_id)  # 일부러 커밋 전에
        time.sleep(COMMIT_DELAY_SECONDS)
    value = retried.get(timeout=WAIT_SECONDS)
    show("ship_or_retry.delay(order_id).get()['found']", value["found"], True)
    show("그사이의 재시도 (retries ≥ 1)", value["retries"] >= 1, True, note="워커 로그: Retry in 1s: LookupError")


def step_5_publisher_confirms():
    step("5. 브로커가 받지 않은 메시지: 릴레이는 publisher confirms로 확인한 뒤에 적습니다")
    show(
        f"exchange_exists({MISSING_EXCHANGE!r})",
        exchange_exists(MISSING_EXCHANGE),
        False,
        note="ship_express 의 경로가 가리키는 exchange",
    )
    order_id = outbox_order("지도", ship_express)
    show("confirm=False 릴레이의 get()", relay_outbox.delay(confirm=False).get(timeout=WAIT_SECONDS), 1)
    show("그 뒤 보내지 않은 아웃박스 행", unsent(order_id), 0, note="보냈다고 적었지만 메시지는 어디에도 없습니다")
    order_id = outbox_order("나침반", ship_express)
    try:
        error = relay_outbox.delay().get(timeout=WAIT_SECONDS, propagate=False)
        show(
            "confirm=True 릴레이가 받은 예외",
            type(error).__name__,
            "NotFound",
            note=f"워커 로그: NOT_FOUND - no exchange '{MISSING_EXCHANGE}'",
        )
        show(
            "그 뒤 보내지 않은 아웃박스 행",
            unsent(order_id),
            1,
            note="롤백되었습니다. 경로를 고치면 다음 릴레이가 보냅니다",
        )
    finally:
        discard_unsent(order_id)  # 보여 준 뒤 지운다. 남겨 두면 다음 릴레이도 실패한다


def calls():
    create_tables()
    step_1_sent_before_the_commit()
    step_2_sent_after_the_commit()
    step_3_the_outbox()
    step_4_retry_while_the_row_is_missing()
    step_5_publisher_confirms()


def outbox_order(item, task):
    """주문 하나와 그 주문의 아웃박스 행 하나를 한 트랜잭션에 쓰고 주문 id를 돌려준다."""
    with Session(engine) as session, session.begin():
        order_id = insert_order(session, item)
        add_to_outbox(session, task, order_id)
    return order_id


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
