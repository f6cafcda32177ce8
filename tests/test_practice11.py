"""practice11 README: 커밋 전에 보낸 작업, after_commit 으로 보내기, 아웃박스와 릴레이, 행이 없을 때의 재시도."""

from __future__ import annotations

import ast
import importlib.util
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.orm import Session

from course import wait_until
from practice11.tasks import (
    MAX_RETRIES,
    RETRY_SECONDS,
    add_to_outbox,
    create_tables,
    engine,
    insert_order,
    relay_outbox,
    ship,
    ship_once,
    ship_or_retry,
    shipments,
    unsent,
)
from tests import WAIT_SECONDS
from tests.readme import readme

LESSON = "practice11"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)


@pytest.fixture(scope="module", autouse=True)
def _tables():
    create_tables()


def test_a_task_sent_before_the_commit_runs_before_it_and_still_succeeds(worker):
    with Session(engine) as session, session.begin():
        order_id = insert_order(session, "test")
        sent = ship.delay(order_id)
        seen = sent.get(timeout=WAIT_SECONDS)  # 커밋을 기다리지 않고 끝난다
    assert (sent.state, seen["found"]) == ("SUCCESS", False)
    assert ship.delay(order_id).get(timeout=WAIT_SECONDS)["found"] is True  # 커밋한 뒤에는 보인다


def test_a_relay_that_dies_after_publishing_publishes_again_and_the_idempotent_task_ships_once(worker):
    with Session(engine) as session, session.begin():
        order_id = insert_order(session, f"relay-{uuid.uuid4().hex[:6]}")
        add_to_outbox(session, ship_once, order_id)
    with pytest.raises(RuntimeError):
        relay_outbox.delay(crash_before_mark=True).get(timeout=WAIT_SECONDS)
    assert unsent(order_id) == 1  # 보냈다고 적지 못했다
    relay_outbox.delay().get(timeout=WAIT_SECONDS)  # 다음 릴레이가 한 번 더 보낸다
    assert unsent(order_id) == 0
    ran = re.compile(rf"ship_once\[[^\]]+\] succeeded in \S+: {order_id}$", re.MULTILINE)
    wait_until(lambda: len(ran.findall(worker.log)) >= 2, "워커 로그의 ship_once 성공 2줄", WAIT_SECONDS)
    assert shipments(order_id) == 1  # 두 번 실행됐지만 배송은 한 번


def test_ship_or_retry_fails_when_the_row_never_comes(worker):
    result = ship_or_retry.delay(-1)
    with pytest.raises(LookupError):
        result.get(timeout=WAIT_SECONDS + MAX_RETRIES * RETRY_SECONDS)
    assert result.state == "FAILURE"
    # 최대 3번 다시 해 본다: 모두 4번 실행, 재시도 로그 3줄.
    assert worker.log.count(f"ship_or_retry[{result.id}] received") == MAX_RETRIES + 1 == 4
    assert len(re.findall(rf"ship_or_retry\[{result.id}\] retry: Retry in 1s", worker.log)) == MAX_RETRIES


def test_the_outbox_row_and_the_order_stay_or_go_together():
    with Session(engine) as session:
        session.begin()
        order_id = insert_order(session, "rolled back")
        add_to_outbox(session, ship_once, order_id)
        session.rollback()
    with engine.connect() as conn:
        orders = conn.execute(
            sqlalchemy.text("SELECT count(*) FROM practice11_orders WHERE id = :id"), {"id": order_id}
        )
        assert orders.scalar_one() == 0
    assert unsent(order_id) == 0


def test_celery_gives_django_tasks_delay_on_commit():
    # Django는 이 강좌의 의존성이 아니다: 설치된 Celery의 소스에서 DjangoTask가 delay_on_commit 을 정의하는지 본다.
    source = Path(importlib.util.find_spec("celery.contrib.django.task").origin).read_text()
    django_task = next(
        node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "DjangoTask"
    )
    methods = {node.name: node for node in django_task.body if isinstance(node, ast.FunctionDef)}
    assert {"delay_on_commit", "apply_async_on_commit"} <= set(methods)
    # 같은 일: Django의 transaction.on_commit 에 보내기(delay)를 맡긴다. 커밋되면 보내고, 롤백되면 보내지 않는다.
    assert "transaction.on_commit(functools.partial(self.delay" in ast.unparse(methods["delay_on_commit"])


def test_the_readme_outbox_query_runs():
    query = re.search(r'-c "(SELECT [^"]+ FROM practice11_outbox[^"]*)"', readme("practice11/README.md")).group(1)
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(query)).all()
