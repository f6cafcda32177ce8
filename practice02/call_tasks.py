"""practice02의 작업들을 chain으로 이어 호출하고, 단계마다의 결과를 id로 읽는다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice02.tasks worker --loglevel=info
그다음:                             python -m practice02.call_tasks
"""

import sys
import uuid

from celery import chain
from celery.canvas import Signature

from course import WAIT_SECONDS, Scenario
from practice02.tasks import add, app, divide, multiply, subtract

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect


def fresh_ids(n):
    # 실행할 때마다 새 id를 만든다. 같은 id를 다시 쓰면 결과 백엔드가 지난번 결과를 돌려줄 수 있다(README 참고).
    return [str(uuid.uuid4()) for _ in range(n)]


def calls():
    step("1. 시그니처: .s() 는 호출을 담아 둘 뿐 실행하지 않습니다")
    signature = show("add.s(1, 2)", add.s(1, 2), note="Signature 객체입니다. 아직 아무것도 보내지 않았습니다")
    expect("add.s(1, 2) 의 타입", isinstance(signature, Signature), True)
    show("add.s(1, 2).delay().get()", signature.delay().get(timeout=WAIT_SECONDS), 3.0)

    step("2. chain: 앞 작업의 결과가 다음 작업의 첫 번째 인자가 됩니다")
    ids = fresh_ids(4)
    workflow = chain(
        add.s(1, 2).set(task_id=ids[0]),  # add(1, 2)
        multiply.s(3).set(task_id=ids[1]),  # multiply(<앞 결과>, 3)
        divide.s(7).set(task_id=ids[2]),  # divide(<앞 결과>, 7)
        subtract.s(2).set(task_id=ids[3]),  # subtract(<앞 결과>, 2)
    )
    result = workflow.apply_async()
    final = show("chain(...).apply_async().get()", result.get(timeout=WAIT_SECONDS))
    for name, task_id in zip(["add(1, 2)", "multiply(·, 3)", "divide(·, 7)", "subtract(·, 2)"], ids, strict=True):
        print(f"      {name:<15} id={task_id[:8]}…  → {app.AsyncResult(task_id).get(timeout=WAIT_SECONDS)!r}")
    expect("chain의 최종값", round(final, 6), -0.714286)
    expect("chain의 AsyncResult는 마지막 작업", result.id, ids[3])
    parents = []
    node = result
    while node is not None:
        parents.append(node.id)
        node = node.parent
    print(f"    result.id 는 마지막 단계의 id입니다. .parent 를 따라가면 {len(parents)}단계를 거꾸로 지납니다")
    expect(".parent 로 거슬러 오른 id 들", parents, ids[::-1])

    step("3. .si(): 앞 결과를 무시하는 단계")
    value = chain(add.s(1, 2), multiply.si(10, 10)).apply_async().get(timeout=WAIT_SECONDS)
    show("chain(add.s(1, 2), multiply.si(10, 10)).apply_async().get()", value, 100.0, note="3.0은 넘겨받지 않았습니다")

    step("4. 중간에 실패하는 chain: add(1, 2) → divide(·, 0) → subtract(·, 2)")
    ids = fresh_ids(3)
    result = chain(
        add.s(1, 2).set(task_id=ids[0]),
        divide.s(0).set(task_id=ids[1]),
        subtract.s(2).set(task_id=ids[2]),
    ).apply_async()
    error = show("result.get(propagate=False)", result.get(timeout=WAIT_SECONDS, propagate=False))
    # Celery는 다음 단계를 보낸 뒤에 이 단계의 결과를 적는다. 그래서 뒤 단계의 실패가 먼저 적힐 수 있다.
    # 첫 단계의 결과가 적히기를 기다린 뒤에 단계별 상태를 읽는다.
    app.AsyncResult(ids[0]).get(timeout=WAIT_SECONDS)
    states = [app.AsyncResult(task_id).state for task_id in ids]
    for name, task_id, state in zip(["add(1, 2)", "divide(·, 0)", "subtract(·, 2)"], ids, states, strict=True):
        print(f"      {name:<15} state={state:<8} result={app.AsyncResult(task_id).result!r}")
    print("    → 앞 단계의 결과는 남고, 실패한 단계 뒤의 subtract는 실행되지 않았습니다.")
    print("      그래도 Celery는 subtract의 id에도 같은 예외를 FAILURE로 적어 둡니다.")
    print("      그래서 그 id를 기다리는 쪽도 영원히 기다리지 않습니다.")
    expect("실패한 chain의 예외", type(error), ZeroDivisionError)
    expect("실패한 chain의 단계별 state", states, ["SUCCESS", "FAILURE", "FAILURE"])

    step_5_a_reused_task_id()


def step_5_a_reused_task_id():
    """같은 작업 id를 다시 쓰면 결과 백엔드는 처음 기록된 SUCCESS를 지킨다."""
    step("5. 같은 id를 다시 쓸 때: 결과 백엔드는 처음 SUCCESS를 지킵니다")
    reused = str(uuid.uuid4())
    show(
        "add.apply_async((1, 1), task_id=X).get()",
        add.apply_async((1, 1), task_id=reused).get(timeout=WAIT_SECONDS),
    )
    value = add.apply_async((5, 5), task_id=reused).get(timeout=WAIT_SECONDS)
    show("add.apply_async((5, 5), task_id=X).get()", value, 2.0, note="10.0이 아니라 지난번 결과입니다")
    print("    → 그래서 이 실습은 실행할 때마다 id를 새로 만듭니다.")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
