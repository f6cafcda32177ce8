"""practice09: 콜백과 errback, 실패하는 chain과 chord, 진행률, chunks를 호출하는 쪽에서 지켜본다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice09.tasks worker --loglevel=info
그다음:                             python -m practice09.call_tasks
"""

import sys

from celery import chain, chord
from celery.states import READY_STATES

from course import WAIT_SECONDS, Journal, Scenario, never_within, wait_until
from practice09.tasks import (
    BACKEND,
    add,
    app,
    crash,
    fail,
    journal,
    merge,
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

SETTLE_SECONDS = 0.5  # 보내지지 않는 errback이 실행되지 않는지 지켜보는 시간 (작업이 끝난 뒤)


def step_1_link_gets_the_return_value():
    step("1. link: 성공하면 반환값을 받는 새 작업")
    run = Journal.new_run()
    show(
        "add.apply_async((2, 3), link=record.s(run=run)).get()",
        add.apply_async((2, 3), link=record.s(run=run)).get(timeout=WAIT_SECONDS),
        5,
    )
    show("record가 받은 값", [entry["value"] for entry in journal.wait_for(run, 1, what="record")], [5])


def step_2_three_argument_errback_runs_in_the_failing_process():
    step("2. 인자가 셋 (request, exc, traceback)인 errback은 실패한 그 프로세스 안에서 곧바로 불립니다")
    run = Journal.new_run()
    failed = fail.apply_async((7,), {"run": run}, link_error=on_error.s(run=run))
    show("fail(7) 의 get(propagate=False)", failed.get(timeout=WAIT_SECONDS, propagate=False))
    ran, seen = journal.wait_for(run, 1, what="on_error")  # fail이 먼저, errback이 뒤에 적는다
    show(
        "errback이 받은 (request.id == 실패한 id, request.task, request.args)",
        (seen["id"] == failed.id, seen["task"], seen["args"]),
        (True, "practice09.tasks.fail", [7]),
    )
    show("errback이 받은 exc", seen["exc"], "ValueError('나쁜 값: 7')")
    show("errback이 받은 traceback의 마지막 줄", seen["last_line"], "ValueError: 나쁜 값: 7")
    show("실패한 작업과 errback의 pid가 같다", seen.pid == ran.pid, True, note="메시지 없이 불렸습니다")


def step_3_one_argument_errback_is_a_new_message():
    step("3. 인자가 하나 (task_id)인 errback은 새 메시지로 갑니다")
    run = Journal.new_run()
    failed = fail.apply_async((8,), {"run": run}, link_error=on_error_id.s(run=run))
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    _, seen = journal.wait_for(run, 1, what="on_error_id")
    show(
        "errback이 받은 task_id == 실패한 id", seen["id"] == failed.id, True, note="워커 로그: on_error_id[…] received"
    )


def overwritten_by_type_error(task_id):
    """결과 백엔드에 적힌 task_id 의 결과가 TypeError면 그 예외를 돌려준다. 아니면 None이다."""
    result = app.backend.get_task_meta(task_id)["result"]
    return result if isinstance(result, TypeError) else None


def step_4_bound_errback_gets_only_the_task_id():
    step("4. 함정 1: bind=True 인 errback은 옛 방식대로 새 메시지로 (task_id,) 만 받습니다")
    run = Journal.new_run()
    failed = fail.apply_async((9,), {"run": run}, link_error=on_error_bound_id.s(run=run))
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    _, seen = journal.wait_for(run, 1, what="on_error_bound_id")
    show(
        "(self, task_id) 가 받은 (task_id, self.request.parent_id) == 실패한 id",
        (seen["id"] == failed.id, seen["parent_id"] == failed.id),
        (True, True),
        note="워커 로그: on_error_bound_id[…] received",
    )
    run = Journal.new_run()
    failed = fail.apply_async((10,), {"run": run}, link_error=on_error_bound.s(run=run))
    # get() 이 돌려주는 것은 때에 따라 다르다. 원래의 ValueError를 읽을 수도, 그것을 덮어쓴 TypeError를 읽을 수도 있다.
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    never_within(SETTLE_SECONDS, lambda: "on_error_bound" in journal.whats(run), "on_error_bound 의 실행 기록")
    show("(self, request, exc, traceback) 가 남긴 기록", [w for w in journal.whats(run) if w == "on_error_bound"], [])
    show(
        "잠시 뒤 결과 백엔드의 fail(10) 결과",
        wait_until(lambda: overwritten_by_type_error(failed.id), "TypeError로 바뀐 결과 백엔드의 fail(10) 결과"),
        note="errback을 보내다 난 TypeError가 결과를 덮어썼습니다",
    )


def step_5_an_errbacks_exception_is_only_logged():
    step("5. errback 안에서 난 예외는 워커 로그에 남을 뿐입니다")
    run = Journal.new_run()
    failed = fail.apply_async((11,), {"run": run}, link_error=[on_error_raises.s(run=run), on_error.s(run=run)])
    show("fail(11) 의 get(propagate=False)", failed.get(timeout=WAIT_SECONDS, propagate=False))
    show(
        "남은 기록",
        [entry.what for entry in journal.wait_for(run, 1, what="on_error")],
        ["fail", "on_error_raises", "on_error"],
        note="예외를 낸 errback 뒤의 errback도 불렸습니다",
    )
    show(
        "fail(11) 의 state와 결과",
        (failed.state, app.AsyncResult(failed.id).result),
        note="워커 로그: Errback 'practice09.tasks.on_error_raises' raised an exception",
    )
    expect("fail(11) 의 state", failed.state, "FAILURE")


def step_6_a_hard_time_limit_calls_the_errback_twice():
    step("6. 함정 2: 하드 시간 제한에 걸리면 인자 셋 errback이 워커의 메인 프로세스에서 traceback 없이 두 번 불립니다")
    run = Journal.new_run()
    show(
        "overrun의 get(propagate=False)",
        overrun.apply_async((run,), link_error=on_error.s(run=run)).get(timeout=WAIT_SECONDS, propagate=False),
    )
    started, *errbacks = journal.wait_for(run, 2, what="on_error")  # overrun이 시작할 때 먼저 적는다
    show("errback이 불린 횟수", len(errbacks), 2)
    show(
        "errback의 pid가 작업의 pid와 다르다",
        all(entry.pid != started.pid for entry in errbacks),
        True,
        note="죽은 풀 프로세스 대신 메인 프로세스에서 불렸습니다",
    )
    show("errback이 받은 traceback", [entry["last_line"] for entry in errbacks], [None, None])


def chain_states(result):
    """chain의 마지막 결과에서 parent를 거슬러 올라가, 첫 단계부터의 state들을 돌려준다."""
    states = []
    while result is not None:
        states.insert(0, result.state)
        result = result.parent
    return states


def step_7_a_failing_chain_and_chord():
    step("7. 실패하는 chain과 chord")
    run = Journal.new_run()
    result = chain(add.s(1, 2), fail.s(), add.s(10), add.s(100)).apply_async(link_error=on_error.s(run=run))
    show(
        "chain(add(1, 2), fail, add, add).get(propagate=False)",
        result.get(timeout=WAIT_SECONDS, propagate=False),
    )
    show(
        "errback이 불린 단계",
        [entry["task"] for entry in journal.wait_for(run, 1, what="on_error")],
        ["practice09.tasks.fail"],
        note="단계마다 붙지만 한 번만 불렸습니다",
    )
    show(
        "단계별 state",
        chain_states(result),
        ["SUCCESS", "FAILURE", "FAILURE", "FAILURE"],
        note="뒤 단계는 실행되지 않고 FAILURE로 적힙니다",
    )
    run = Journal.new_run()
    header = [add.s(1, 1), fail.s(5), add.s(2, 2)]
    result = chord(header)(merge.s().on_error(on_error.s(run=run)))
    with scenario.raises(ValueError) as raised:
        result.get(timeout=WAIT_SECONDS)
    show("chord(...).get()", raised.exc, note="header의 원래 예외")
    error = show("chord(...).get(propagate=False)", result.get(timeout=WAIT_SECONDS, propagate=False))
    expect("chord 실패의 예외 이름", type(error).__name__, "ChordError")
    show("header의 state", [child.state for child in result.parent.results], ["SUCCESS", "FAILURE", "SUCCESS"])
    (seen,) = journal.wait_for(run, 1, what="on_error")
    show(
        "body의 errback이 받은 (exc 이름, traceback)",
        (seen["exc"].split("(")[0], seen["last_line"]),
        ("ChordError", None),
    )


def step_8_a_killed_header_process_fails_the_chord():
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


def progress_until_ready(result):
    """result의 (state, info)가 바뀔 때마다 적어 두고, 끝난 state에 이르면 그 차례를 돌려준다."""
    seen = []

    def ready():
        # state와 info를 한 번에 읽는다. 결과 백엔드에 한 번만 묻고, 두 값이 서로 다른 순간의 것이 되지 않는다.
        meta = result.backend.get_task_meta(result.id)
        if not seen or seen[-1] != (meta["status"], meta["result"]):
            seen.append((meta["status"], meta["result"]))
        return seen if seen[-1][0] in READY_STATES else None

    return wait_until(ready, "progress 작업의 끝")


def step_9_progress():
    step("9. 진행률: update_state(state='PROGRESS', meta=...)")
    seen = progress_until_ready(progress.delay())
    for state, info in seen:
        print(f"    {state:<8} {info}")
    expect("진행률의 차례", [state for state, _ in seen], ["PENDING"] + ["PROGRESS"] * 4 + ["SUCCESS"])


def step_10_chunks():
    step("10. chunks는 작은 작업 100개를 메시지 10개로 보냅니다")
    result = add.chunks(zip(range(100), range(100), strict=True), 10).apply_async()
    values = result.get(timeout=WAIT_SECONDS)
    show("len(result.results)", len(result.results), 10, note="celery.starmap 메시지 10개")
    show("[len(part) for part in get()]", [len(part) for part in values], [10] * 10)
    show("get()[0]", values[0], [0, 2, 4, 6, 8, 10, 12, 14, 16, 18])


def calls():
    print(f"결과 백엔드: {BACKEND}")
    step_1_link_gets_the_return_value()
    step_2_three_argument_errback_runs_in_the_failing_process()
    step_3_one_argument_errback_is_a_new_message()
    step_4_bound_errback_gets_only_the_task_id()
    step_5_an_errbacks_exception_is_only_logged()
    step_6_a_hard_time_limit_calls_the_errback_twice()
    step_7_a_failing_chain_and_chord()
    step_8_a_killed_header_process_fails_the_chord()
    step_9_progress()
    step_10_chunks()


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
