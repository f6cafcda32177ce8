"""practice02 README: 시그니처를 만드는 것만으로는 아무것도 보내지 않는다. 소비하는 워커가 없는 큐를 보고 확인한다.

test_practice02.py 의 모듈 워커가 같은 큐를 소비하면 큐는 늘 비어 보이므로 모듈을 따로 둔다.
"""

from __future__ import annotations

from celery import chain

from playground.broker import queue_counts
from practice02.tasks import add, divide, multiply, subtract

LESSON = "practice02"


def test_building_signatures_and_chains_sends_nothing_until_delay_or_apply_async(empty_queue):
    signature = add.s(1, 2)
    workflow = chain(add.s(1, 2).set(task_id="step-1"), multiply.s(3), divide.s(7), subtract.s(2))
    immutable = multiply.si(10, 10)
    assert (signature.id, immutable.id) == (None, None)  # 아직 task id도 없다
    assert workflow.tasks[0].id == "step-1"
    assert queue_counts(empty_queue) == (0, 0)  # 시그니처와 chain을 만들었을 뿐, 큐에는 아무것도 없다
    signature.delay()
    immutable.apply_async()
    assert queue_counts(empty_queue) == (2, 0)  # .delay() 와 .apply_async() 가 보낸다
    workflow.apply_async()
    assert queue_counts(empty_queue) == (3, 0)  # chain은 첫 단계만 보낸다. 다음 단계는 앞 단계가 끝난 뒤에 간다
