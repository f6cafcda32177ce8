"""Celery 없이 작업의 함수만 테스트한다. 브로커도 워커도 필요 없다.

실행:  python -m pytest practice15/examples/test_plain_function.py
"""

import pytest

from practice15.tasks import MAX_RETRIES, add, flaky, pair


def test_run_is_the_function():
    assert add.run(2, 3) == 5
    assert add(2, 3) == 5  # 작업을 함수처럼 부르는 것도 같다. 메시지는 보내지 않는다


def test_run_returns_python_values():
    assert pair.run(1, 2) == (1, 2)  # JSON을 거치지 않는다. 실제 경로라면 [1, 2] 다


def test_bound_task_run_gets_self():
    # bind=True 인 작업도 run(...) 으로 부른다. self는 작업 자신이고, 요청은 비어 있다.
    # 작업을 함수로 부를 때(run() 이나 flaky()) retry() 는 재시도하지 않고 넘긴 예외를 그대로 낸다.
    with pytest.raises(ConnectionError, match="잠깐 안 됨"):
        flaky.run()
    with pytest.raises(ConnectionError, match="잠깐 안 됨"):
        flaky()


def test_bound_task_with_a_pushed_request():
    # 요청을 직접 넣으면 self.request 가 그 값이 된다. 몇 번째 재시도인지 정해서 부를 수 있다.
    flaky.push_request(retries=MAX_RETRIES)
    try:
        assert flaky.run() == MAX_RETRIES
    finally:
        flaky.pop_request()
