"""practice02 README: 시그니처를 만드는 것만으로는 아무것도 보내지 않는다. 소비하는 워커가 없는 큐를 보고 확인한다.

test_practice02.py 의 모듈 워커가 같은 큐를 소비하면 큐는 늘 비어 보이므로 모듈을 따로 둔다.
"""

from __future__ import annotations

from celery import chain

from course import never_within, wait_until
from playground.broker import queue_counts
from practice02.tasks import add, divide, multiply, subtract
from tests import WAIT_SECONDS

LESSON = "practice02"
SETTLE_SECONDS = 1  # chain이 더 보내지 않는지 지켜보는 시간


def test_building_signatures_and_chains_sends_nothing_until_delay_or_apply_async(empty_queue):
    signature = add.s(1, 2)
    workflow = chain(add.s(1, 2).set(task_id="step-1"), multiply.s(3), divide.s(7), subtract.s(2))
    immutable = multiply.si(10, 10)
    assert (signature.id, immutable.id) == (None, None)  # 아직 task id도 없다
    assert workflow.tasks[0].id == "step-1"
    assert queue_counts(empty_queue) == (0, 0)  # 시그니처와 chain을 만들었을 뿐, 큐에는 아무것도 없다
    signature.delay()
    immutable.apply_async()
    # .delay() 와 .apply_async() 가 보낸다. 보낸 메시지가 큐에 닿기까지는 잠깐 걸린다(다른 연결로 세므로).
    wait_until(lambda: queue_counts(empty_queue) == (2, 0), "보낸 메시지 두 개가 큐에", WAIT_SECONDS)
    workflow.apply_async()
    # chain은 첫 단계만 보낸다. 다음 단계는 앞 단계가 끝난 뒤에 간다.
    wait_until(lambda: queue_counts(empty_queue) == (3, 0), "chain의 첫 단계가 큐에", WAIT_SECONDS)
    never_within(SETTLE_SECONDS, lambda: queue_counts(empty_queue)[0] > 3, "chain의 다음 단계 메시지")
