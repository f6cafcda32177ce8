"""practice09: 콜백과 errback, 실패하는 chain과 chord, 진행률, chunks를 호출하는 쪽에서 지켜본다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice09.tasks worker --loglevel=info
그다음:                             python -m practice09.call_tasks
"""

import sys
import time
import uuid

from celery import chain, chord
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.states import READY_STATES

from course import WAIT_SECONDS, Scenario
from practice09.tasks import (
    BACKEND,
    add,
    app,
    crash,
    fail,
    merge,
    notes,
    on_error,
    on_error_bound,
    on_error_bound_id,
    on_error_id,
    on_error_raises,
    overrun,
    progress,
    record,
)

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect

SETTLE_SECONDS = 0.5  # 콜백 메시지가 실행되기를 기다리는 시간 (작업이 끝난 뒤)


def notes_after(run, what, count=1):
    """run의 기록 가운데 what이 count 개 모이기를 기다렸다가 돌려준다. 길어야 WAIT_SECONDS 초를 기다린다.

    count=0 이면 "오지 않는다"를 보이려는 것이다. 이때는 SETTLE_SECONDS 만큼 기다려 본 뒤 돌려준다.
    """
    deadline = time.time() + (WAIT_SECONDS if count else SETTLE_SECONDS)
    while len([n for n in notes(run) if n["what"] == what]) < max(count, 1) and time.time() < deadline:
        time.sleep(0.05)
    return [n for n in notes(run) if n["what"] == what]


def stored_result(task_id, done):
    """결과 백엔드에 적힌 task_id 의 결과를 done(결과)가 참이 될 때까지 다시 읽는다. 길어야 WAIT_SECONDS 초다."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not done(result := app.backend.get_task_meta(task_id)["result"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def calls():
    print(f"결과 백엔드: {BACKEND}")

    step("1. link: 성공하면 반환값을 받는 새 작업")
    run = str(uuid.uuid4())
    show(
        "add.apply_async((2, 3), link=record.s(run=run)).get()",
        add.apply_async((2, 3), link=record.s(run=run)).get(timeout=WAIT_SECONDS),
        5,
    )
    show("record가 받은 값", [n["value"] for n in notes_after(run, "record")], [5])

    step("2. 인자가 셋 (request, exc, traceback)인 errback은 실패한 그 프로세스 안에서 곧바로 불립니다")
    run = str(uuid.uuid4())
    failed = fail.apply_async((7,), {"run": run}, link_error=on_error.s(run=run))
    show("fail(7) 의 get(propagate=False)", failed.get(timeout=WAIT_SECONDS, propagate=False))
    (seen,) = notes_after(run, "on_error")
    show(
        "errback이 받은 (request.id == 실패한 id, request.task, request.args)",
        (seen["id"] == failed.id, seen["task"], seen["args"]),
        (True, "practice09.tasks.fail", [7]),
    )
    show("errback이 받은 exc", seen["exc"], "ValueError('나쁜 값: 7')")
    show("errback이 받은 traceback의 마지막 줄", seen["last_line"], "ValueError: 나쁜 값: 7")
    show(
        "실패한 작업과 errback의 pid가 같다",
        seen["pid"] == notes_after(run, "fail")[0]["pid"],
        True,
        note="메시지 없이 불렸습니다",
    )

    step("3. 인자가 하나 (task_id)인 errback은 새 메시지로 갑니다")
    run = str(uuid.uuid4())
    failed = fail.apply_async((8,), {"run": run}, link_error=on_error_id.s(run=run))
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    (seen,) = notes_after(run, "on_error_id")
    show(
        "errback이 받은 task_id == 실패한 id", seen["id"] == failed.id, True, note="워커 로그: on_error_id[…] received"
    )

    step("4. 함정 1: bind=True 인 errback은 옛 방식대로 새 메시지로 (task_id,) 만 받습니다")
    run = str(uuid.uuid4())
    failed = fail.apply_async((9,), {"run": run}, link_error=on_error_bound_id.s(run=run))
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    (seen,) = notes_after(run, "on_error_bound_id")
    show(
        "(self, task_id) 가 받은 (task_id, self.request.parent_id) == 실패한 id",
        (seen["id"] == failed.id, seen["parent_id"] == failed.id),
        (True, True),
        note="워커 로그: on_error_bound_id[…] received",
    )
    run = str(uuid.uuid4())
    failed = fail.apply_async((10,), {"run": run}, link_error=on_error_bound.s(run=run))
    show("fail(10) 의 get(propagate=False)", failed.get(timeout=WAIT_SECONDS, propagate=False))
    show("(self, request, exc, traceback) 가 남긴 기록", notes_after(run, "on_error_bound", count=0), [])
    overwritten = show(
        "잠시 뒤 결과 백엔드의 fail(10) 결과",
        stored_result(failed.id, lambda result: isinstance(result, TypeError)),
        note="errback을 보내다 난 TypeError가 결과를 덮어썼습니다",
    )
    expect("덮어쓴 예외의 이름", type(overwritten).__name__, "TypeError")

    step("5. errback 안에서 난 예외는 워커 로그에 남을 뿐입니다")
    run = str(uuid.uuid4())
    failed = fail.apply_async((11,), {"run": run}, link_error=[on_error_raises.s(run=run), on_error.s(run=run)])
    show("fail(11) 의 get(propagate=False)", failed.get(timeout=WAIT_SECONDS, propagate=False))
    notes_after(run, "on_error")
    show(
        "남은 기록",
        [n["what"] for n in notes(run)],
        ["fail", "on_error_raises", "on_error"],
        note="예외를 낸 errback 뒤의 errback도 불렸습니다",
    )
    show(
        "fail(11) 의 state와 결과",
        (failed.state, app.AsyncResult(failed.id).result),
        note="워커 로그: Errback 'practice09.tasks.on_error_raises' raised an exception",
    )
    expect("fail(11) 의 state", failed.state, "FAILURE")

    step("6. 함정 2: 하드 시간 제한에 걸리면 인자 셋 errback이 워커의 메인 프로세스에서 traceback 없이 두 번 불립니다")
    run = str(uuid.uuid4())
    show(
        "overrun의 get(propagate=False)",
        overrun.apply_async((run,), link_error=on_error.s(run=run)).get(timeout=WAIT_SECONDS, propagate=False),
    )
    errbacks = notes_after(run, "on_error", count=2)
    started_in = notes_after(run, "overrun")[0]["pid"]
    show("errback이 불린 횟수", len(errbacks), 2)
    show(
        "errback의 pid가 작업의 pid와 다르다",
        all(n["pid"] != started_in for n in errbacks),
        True,
        note="죽은 풀 프로세스 대신 메인 프로세스에서 불렸습니다",
    )
    show("errback이 받은 traceback", [n["last_line"] for n in errbacks], [None, None])

    step("7. 실패하는 chain과 chord")
    run = str(uuid.uuid4())
    result = chain(add.s(1, 2), fail.s(), add.s(10), add.s(100)).apply_async(link_error=on_error.s(run=run))
    show(
        "chain(add(1, 2), fail, add, add).get(propagate=False)",
        result.get(timeout=WAIT_SECONDS, propagate=False),
    )
    show(
        "errback이 불린 단계",
        [n["task"] for n in notes_after(run, "on_error")],
        ["practice09.tasks.fail"],
        note="단계마다 붙지만 한 번만 불렸습니다",
    )
    states, node = [], result
    while node is not None:
        states.insert(0, node.state)
        node = node.parent
    show(
        "단계별 state",
        states,
        ["SUCCESS", "FAILURE", "FAILURE", "FAILURE"],
        note="뒤 단계는 실행되지 않고 FAILURE로 적힙니다",
    )
    run = str(uuid.uuid4())
    header = [add.s(1, 1), fail.s(5), add.s(2, 2)]
    result = chord(header)(merge.s().on_error(on_error.s(run=run)))
    with scenario.raises(ValueError) as raised:
        result.get(timeout=WAIT_SECONDS)
    show("chord(...).get()", raised.exc, note="header의 원래 예외")
    error = show("chord(...).get(propagate=False)", result.get(timeout=WAIT_SECONDS, propagate=False))
    expect("chord 실패의 예외 이름", type(error).__name__, "ChordError")
    show("header의 state", [child.state for child in result.parent.results], ["SUCCESS", "FAILURE", "SUCCESS"])
    (seen,) = notes_after(run, "on_error")
    show(
        "body의 errback이 받은 (exc 이름, traceback)",
        (seen["exc"].split("(")[0], seen["last_line"]),
        ("ChordError", None),
    )

    step("8. chord의 header를 실행하던 풀 프로세스가 죽으면 메인 프로세스가 실패를 적고 chord도 실패합니다")
    result = chord([add.s(1, 1), crash.s(2)])(merge.s())
    error = show(
        "chord([add(1, 1), crash(2)])(merge).get(propagate=False)",
        result.get(timeout=WAIT_SECONDS, propagate=False),
    )
    expect("chord 실패의 예외 이름", type(error).__name__, "ChordError")
    show(
        "header의 state",
        [child.state for child in result.parent.results],
        ["SUCCESS", "FAILURE"],
        note="워커 로그: Process 'ForkPoolWorker-…' … exited with 'signal 9 (SIGKILL)'",
    )

    step("9. 진행률: update_state(state='PROGRESS', meta=...)")
    result = progress.delay()
    seen = []
    deadline = time.monotonic() + WAIT_SECONDS
    while not seen or seen[-1][0] not in READY_STATES:
        if time.monotonic() > deadline:
            raise CeleryTimeoutError("progress did not finish")
        # state와 info를 한 번에 읽는다. 결과 백엔드에 한 번만 묻고, 두 값이 서로 다른 순간의 것이 되지 않는다.
        meta = result.backend.get_task_meta(result.id)
        if not seen or seen[-1] != (meta["status"], meta["result"]):
            seen.append((meta["status"], meta["result"]))
        time.sleep(0.05)
    for state, info in seen:
        print(f"    {state:<8} {info}")
    expect("진행률의 차례", [state for state, _ in seen], ["PENDING"] + ["PROGRESS"] * 4 + ["SUCCESS"])

    step("10. chunks는 작은 작업 100개를 메시지 10개로 보냅니다")
    result = add.chunks(zip(range(100), range(100), strict=True), 10).apply_async()
    values = result.get(timeout=WAIT_SECONDS)
    show("len(result.results)", len(result.results), 10, note="celery.starmap 메시지 10개")
    show("[len(part) for part in get()]", [len(part) for part in values], [10] * 10)
    show("get()[0]", values[0], [0, 2, 4, 6, 8, 10, 12, 14, 16, 18])


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
