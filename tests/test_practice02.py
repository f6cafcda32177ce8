"""practice02 README 절: chain, 시그니처, 단계별 id, 실패한 chain, 다시 쓴 id를 실제 워커로 확인한다."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy
from celery import chain
from celery.canvas import Signature

from playground.lessons import worker_on_empty_queue
from practice02.tasks import add, app, divide, multiply, subtract
from tests import WAIT_SECONDS

LESSON = "practice02"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)


def ids(n):
    return [str(uuid.uuid4()) for _ in range(n)]


def test_a_signature_holds_a_call_without_sending_it(worker):
    signature = add.s(1, 2)
    assert isinstance(signature, Signature)
    assert (signature.task, tuple(signature.args)) == ("practice02.tasks.add", (1, 2))
    assert signature.id is None  # 보낸 적이 없으니 id도 없다
    assert signature.delay().get(timeout=WAIT_SECONDS) == 3.0


def test_each_step_gets_the_previous_result_as_its_first_argument(worker):
    step_ids = ids(4)
    result = chain(
        add.s(1, 2).set(task_id=step_ids[0]),
        multiply.s(3).set(task_id=step_ids[1]),
        divide.s(7).set(task_id=step_ids[2]),
        subtract.s(2).set(task_id=step_ids[3]),
    ).apply_async()
    assert result.get(timeout=WAIT_SECONDS) == pytest.approx(9.0 / 7 - 2)
    values = [app.AsyncResult(i).get(timeout=WAIT_SECONDS) for i in step_ids]
    assert values == [3.0, 9.0, pytest.approx(9.0 / 7), pytest.approx(9.0 / 7 - 2)]
    # subtract(1.2857…, 2) 이지 subtract(2, 1.2857…) 이 아니다: 앞 결과는 첫 번째 인자다
    assert values[3] < 0


def test_the_chains_result_is_the_last_task_and_parent_walks_back(worker):
    step_ids = ids(3)
    result = chain(
        *(add.s(1, 1).set(task_id=step_ids[0]), add.s(1).set(task_id=step_ids[1]), add.s(1).set(task_id=step_ids[2]))
    ).apply_async()
    assert result.get(timeout=WAIT_SECONDS) == 4.0
    assert result.id == step_ids[2]
    assert [result.parent.id, result.parent.parent.id] == [step_ids[1], step_ids[0]]
    assert result.parent.parent.parent is None


def test_si_ignores_the_previous_result(worker):
    assert chain(add.s(1, 2), multiply.si(10, 10)).apply_async().get(timeout=WAIT_SECONDS) == 100.0
    # .s() 였다면 multiply(3.0, 10, 10): 인자가 하나 많다
    with pytest.raises(TypeError, match=r"multiply\(\) takes 2 positional arguments but 3 were given"):
        chain(add.s(1, 2), multiply.s(10, 10)).apply_async().get(timeout=WAIT_SECONDS)


def test_a_failing_step_stops_the_chain_and_its_successors_are_marked_failed_without_running(worker):
    step_ids = ids(3)
    result = chain(
        add.s(1, 2).set(task_id=step_ids[0]),
        divide.s(0).set(task_id=step_ids[1]),
        subtract.s(2).set(task_id=step_ids[2]),
    ).apply_async()
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=WAIT_SECONDS)
    before, failed, after = (app.AsyncResult(i) for i in step_ids)
    # Celery는 다음 단계를 보낸 뒤에 이 단계의 결과를 적는다(app/trace.py). 그래서 뒤 단계의 실패가 먼저 적힐 수 있다.
    assert before.get(timeout=WAIT_SECONDS) == 3.0 and before.state == "SUCCESS"
    assert failed.state == "FAILURE" and isinstance(failed.result, ZeroDivisionError)
    assert after.state == "FAILURE" and isinstance(after.result, ZeroDivisionError)
    worker.wait_for_log(rf"divide\[{step_ids[1]}\] raised unexpected: ZeroDivisionError", WAIT_SECONDS)
    assert f"subtract[{step_ids[2]}]" not in worker.log  # 워커는 받지도 실행하지도 않았다


def test_a_reused_task_id_returns_the_first_success(worker):
    reused = str(uuid.uuid4())
    assert add.apply_async((1, 1), task_id=reused).get(timeout=WAIT_SECONDS) == 2.0
    second = add.apply_async((5, 5), task_id=reused)
    worker.wait_for_log(rf"add\[{reused}\] succeeded in [\d.e-]+s: 10\.0", WAIT_SECONDS)  # 두 번째도 실행은 됐다
    assert second.get(timeout=WAIT_SECONDS) == 2.0
    assert app.AsyncResult(reused).get(timeout=WAIT_SECONDS) == 2.0


def test_the_database_backend_also_keeps_the_first_success_of_a_reused_id(results_db):
    # README: Redis뿐 아니라 데이터베이스 백엔드도 처음 SUCCESS를 지킨다. practice02는 Redis를 쓰므로,
    # PostgreSQL 결과 백엔드를 쓰는 practice00의 워커와 `add` 로 같은 일을 해 본다.
    from practice00.tasks import add as add_on_postgres

    reused = str(uuid.uuid4())
    with worker_on_empty_queue("practice00") as postgres_worker:
        assert add_on_postgres.apply_async((1, 1), task_id=reused).get(timeout=WAIT_SECONDS) == 2
        second = add_on_postgres.apply_async((5, 5), task_id=reused)
        postgres_worker.wait_for_log(
            rf"add\[{reused}\] succeeded in [\d.e-]+s: 10\b", WAIT_SECONDS
        )  # 두 번째도 실행됐다
        assert second.get(timeout=WAIT_SECONDS) == 2
    rows = results_db.execute(
        sqlalchemy.text("SELECT status, result FROM celery_taskmeta WHERE task_id = :id"), {"id": reused}
    ).all()
    assert [(status, bytes(result)) for status, result in rows] == [("SUCCESS", b"2")]
