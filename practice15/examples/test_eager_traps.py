"""eager가 숨기는 것: 같은 작업을 eager로 한 번, 실제 워커(conftest.py 의 real_worker)로 한 번 부른다.

eager 테스트는 eager가 돌려주는 값을, 실제 경로의 테스트는 실제로 돌아오는 값을 기대값으로 적는다. 두 쪽 모두
통과한다.
실행:  python -m pytest practice15/examples
"""

import datetime
import decimal
import time
import uuid

import pytest
from billiard.exceptions import TimeLimitExceeded
from celery.exceptions import Retry
from celery.result import AsyncResult, EagerResult
from kombu.exceptions import EncodeError

from practice15.tasks import (
    COUNTDOWN_SECONDS,
    MAX_RETRIES,
    RETRY_SECONDS,
    add,
    app,
    count_by_id,
    fail,
    flaky,
    pair,
    slow,
    unique,
)

WAIT_SECONDS = 10  # 실제 경로에서 결과를 기다리는 상한


# 돌려준 값: eager는 JSON을 거치지 않는다.


def test_set_result_eager():
    assert unique.apply((["a", "b", "a"],)).get() == {"a", "b"}


def test_set_result_real(real_worker):
    result = unique.delay(["a", "b", "a"])
    with pytest.raises(EncodeError, match="Object of type set is not JSON serializable"):
        result.get(timeout=WAIT_SECONDS)
    assert result.state == "FAILURE"  # 작업은 실행되었지만 워커가 결과를 JSON으로 저장하지 못했다


def test_tuple_result_eager():
    assert pair.apply((1, 2)).get() == (1, 2)


def test_tuple_result_real(real_worker):
    assert pair.delay(1, 2).get(timeout=WAIT_SECONDS) == [1, 2]


def test_int_keys_eager():
    assert count_by_id.apply(([7, 7, 8],)).get() == {7: 2, 8: 1}


def test_int_keys_real(real_worker):
    assert count_by_id.delay([7, 7, 8]).get(timeout=WAIT_SECONDS) == {"7": 2, "8": 1}


def test_datetime_decimal_uuid_survive_json(real_worker):
    # 그대로 돌아오는 값: kombu의 JSON은 이 타입들에 타입 이름을 붙여 보내고, 받을 때 되살린다.
    when, amount = datetime.datetime(2026, 1, 2, 3, 4, 5), decimal.Decimal("1.50")
    assert pair.delay(when, amount).get(timeout=WAIT_SECONDS) == [when, amount]
    day, key = datetime.date(2026, 1, 2), uuid.UUID(int=15)
    assert pair.delay(day, key).get(timeout=WAIT_SECONDS) == [day, key]


# 인자: task.apply() 는 JSON을 거치지 않는다. delay() 는 eager 앱에서도 인자를 JSON으로 바꿨다가 되살린다.


def test_set_argument_apply():
    assert unique.apply(({"a"},)).get() == {"a"}


def test_set_argument_real():
    with pytest.raises(EncodeError, match="Object of type set is not JSON serializable"):
        unique.delay({"a"})  # 보내는 순간 실패한다. 워커가 없어도 그렇다


def test_set_argument_always_eager(always_eager):
    with pytest.raises(EncodeError, match="Object of type set is not JSON serializable"):
        unique.delay({"a"})


def test_tuple_argument_always_eager(always_eager):
    # 인자의 튜플은 JSON을 거쳐 리스트가 되지만, 돌려준 튜플은 그대로다
    assert pair.delay((1, 2), 3).get() == ([1, 2], 3)


# countdown, 시간 제한, 재시도: eager는 기다리지 않고 제한하지 않는다.


def test_countdown_always_eager(always_eager):
    sent = time.monotonic()
    result = add.apply_async((2, 3), countdown=COUNTDOWN_SECONDS)
    assert (result.state, result.get()) == ("SUCCESS", 5)  # 돌아왔을 때 이미 끝나 있다
    assert time.monotonic() - sent < COUNTDOWN_SECONDS  # countdown을 기다리지 않았다


def test_countdown_real(real_worker):
    sent = time.monotonic()
    result = add.apply_async((2, 3), countdown=COUNTDOWN_SECONDS)
    assert result.state == "PENDING"
    assert result.get(timeout=WAIT_SECONDS + COUNTDOWN_SECONDS) == 5
    assert time.monotonic() - sent >= COUNTDOWN_SECONDS


def test_time_limit_eager():
    assert slow.apply().get() == "끝"  # time_limit 보다 오래 걸려도 끝까지 실행된다


def test_time_limit_real(real_worker):
    with pytest.raises(TimeLimitExceeded):
        slow.delay().get(timeout=WAIT_SECONDS)


def test_retry_eager():
    started = time.monotonic()
    result = flaky.apply()
    assert (result.state, result.get()) == ("SUCCESS", MAX_RETRIES)  # 재시도가 모두 이 호출 안에서 실행되었다
    assert time.monotonic() - started < RETRY_SECONDS  # 재시도 간격을 한 번도 기다리지 않았다


def test_retry_eager_propagates():
    with pytest.raises(Retry, match="Retry in 1s"):
        flaky.apply(throw=True)  # 첫 재시도가 호출한 곳에 Retry 예외로 올라온다


def test_retry_real(real_worker):
    sent = time.monotonic()
    assert flaky.delay().get(timeout=WAIT_SECONDS + MAX_RETRIES * RETRY_SECONDS) == MAX_RETRIES
    assert time.monotonic() - sent >= MAX_RETRIES * RETRY_SECONDS


# 라우팅: eager는 큐를 거치지 않는다. 아무 워커도 소비하지 않는 큐로 보낸 작업도 곧바로 실행된다.

NOBODYS_QUEUE = "practice15.nobody"  # 이 큐를 소비하는 워커는 없다


def test_queue_without_a_worker_always_eager(always_eager):
    assert add.apply_async((1, 2), queue=NOBODYS_QUEUE).get() == 3


def test_queue_without_a_worker_real(real_worker):
    result = add.apply_async((1, 2), queue=NOBODYS_QUEUE)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while channel.queue_declare(NOBODYS_QUEUE, passive=True).message_count < 1:  # 메시지가 큐에 닿을 때까지
                assert time.monotonic() < deadline, f"the message did not reach {NOBODYS_QUEUE}"
                time.sleep(0.05)
            assert result.state == "PENDING"  # 큐에서 워커를 기다린다
        finally:
            channel.queue_delete(NOBODYS_QUEUE)


# 결과 객체: EagerResult는 이미 끝나 있고, 결과 백엔드에 남지 않는다.


def test_result_object_eager():
    result = add.apply((2, 3))
    assert isinstance(result, EagerResult)
    assert result.state == "SUCCESS"
    assert AsyncResult(result.id, app=app).state == "PENDING"  # 결과 백엔드는 이 id를 모른다


def test_result_object_real(real_worker):
    result = add.delay(2, 3)
    assert isinstance(result, AsyncResult) and not isinstance(result, EagerResult)
    assert result.get(timeout=WAIT_SECONDS) == 5  # 워커가 실행하고 결과 백엔드에 저장할 때까지 기다린다
    assert AsyncResult(result.id, app=app).state == "SUCCESS"


# task_eager_propagates: 꺼져 있으면(기본값) 호출은 예외 없이 돌아오고, 켜면 호출한 곳에서 예외가 난다.


def test_failure_eager_propagates_off():
    result = fail.apply()  # 예외가 나지 않는다
    assert result.state == "FAILURE"
    assert isinstance(result.result, ValueError)
    with pytest.raises(ValueError, match="작업이 실패했다"):
        result.get()


def test_failure_eager_propagates_on(always_eager):
    app.conf.task_eager_propagates = True
    try:
        with pytest.raises(ValueError, match="작업이 실패했다"):
            fail.delay()
    finally:
        app.conf.task_eager_propagates = False


def test_failure_real(real_worker):
    result = fail.delay()  # 보내기만 하므로 예외가 나지 않는다
    with pytest.raises(ValueError, match="작업이 실패했다"):
        result.get(timeout=WAIT_SECONDS)
    assert result.state == "FAILURE"
