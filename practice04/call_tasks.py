"""practice04의 재시도 작업들을 호출하고, 시도마다의 self.request.retries 와 간격을 보여 준다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice04.tasks worker --loglevel=info
그다음:                             python -m practice04.call_tasks
"""

import sys
from datetime import datetime
from itertools import pairwise

from celery.exceptions import MaxRetriesExceededError

from course import WAIT_SECONDS, Scenario, wait_until
from practice04.tasks import (
    BACKOFF_MAX_SECONDS,
    MAX_RETRIES,
    RETRY_COUNTDOWN_SECONDS,
    always_fails,
    always_fails_without_exc,
    app,
    auto_retrying,
    auto_retrying_slowly,
    auto_retrying_with_jitter,
    flaky,
    journal,
    send,
)

# 함정 작업은 180초 뒤로 미뤄진 것만 확인하고 그만 볼 것이므로, 그 전에 만료되게 보낸다.
TRAP_EXPIRES_SECONDS = 10
# inspect가 워커의 답을 기다리는 상한.
INSPECT_SECONDS = 1.0

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect


def show_attempts(run_id):
    """작업이 시도마다 남긴 기록을 찍고 (retries 목록, 시도 사이 간격들)을 돌려준다."""
    recorded = journal.read(run_id)
    rows = [(entry["retries"], entry.at - recorded[0].at) for entry in recorded]
    for number, (retries, offset) in enumerate(rows, start=1):
        print(f"      시도 {number}: self.request.retries={retries}, 첫 시도 후 {offset:.1f}초")
    gaps = [round(b[1] - a[1]) for a, b in pairwise(rows)]
    return [retries for retries, _ in rows], gaps


def state_after_waiting(result):
    """result가 PENDING을 벗어나기를 기다려 그 state를 돌려준다. 끝까지 PENDING이면 워커가 없는 것이다."""

    def left_pending():
        state = result.state
        return state if state != "PENDING" else None

    return wait_until(left_pending, "작업의 첫 시도")


def calls():
    step("1. 다섯 작업을 한꺼번에 보내기 (기다리는 시간이 겹치도록)")
    flaky_result, flaky_id = send(flaky)
    failing, failing_id = send(always_fails)
    failing_no_exc, failing_no_exc_id = send(always_fails_without_exc)
    auto, auto_id = send(auto_retrying)
    jittered, jittered_id = send(auto_retrying_with_jitter)
    print("    flaky, always_fails, always_fails_without_exc, auto_retrying, auto_retrying_with_jitter")

    step("2. 재시도를 기다리는 동안의 상태")
    show("flaky_result.state", state_after_waiting(flaky_result), "RETRY")
    show("flaky_result.info", flaky_result.info, note="이번 실패의 예외")

    step(f"3. 일시적으로 실패한 뒤 성공하는 flaky (두 번 실패, countdown={RETRY_COUNTDOWN_SECONDS}초)")
    show("flaky_result.get()", flaky_result.get(timeout=WAIT_SECONDS), "성공: retries=2")
    retries, gaps = show_attempts(flaky_id)
    expect("flaky의 retries 값들", retries, [0, 1, 2])
    expect("flaky의 간격(초)", gaps, [RETRY_COUNTDOWN_SECONDS] * 2)

    step(f"4. 끝내 실패하는 always_fails (max_retries={MAX_RETRIES}, retry(exc=exc))")
    error = show("failing.get(propagate=False)", failing.get(timeout=WAIT_SECONDS, propagate=False))
    retries, gaps = show_attempts(failing_id)
    print(
        f"    → 처음 1번과 재시도 {MAX_RETRIES}번, 모두 {len(retries)}번 실행했습니다."
        " 호출하는 쪽은 원래 예외를 받습니다."
    )
    expect("always_fails 실행 횟수", len(retries), MAX_RETRIES + 1)
    expect("always_fails 의 예외", type(error), ConnectionError)
    show("failing.state", failing.state, "FAILURE")

    step("5. exc= 없이 retry() 하는 always_fails_without_exc")
    error = show("failing_no_exc.get(propagate=False)", failing_no_exc.get(timeout=WAIT_SECONDS, propagate=False))
    expect("exc 없는 재시도의 예외", type(error), MaxRetriesExceededError)
    expect("always_fails_without_exc 실행 횟수", len(journal.read(failing_no_exc_id)), MAX_RETRIES + 1)

    backoff = f"retry_backoff=True, retry_backoff_max={BACKOFF_MAX_SECONDS}"
    step(f"6. 선언으로 재시도하는 auto_retrying (autoretry_for, {backoff})")
    error = show("auto.get(propagate=False)", auto.get(timeout=WAIT_SECONDS, propagate=False))
    retries, gaps = show_attempts(auto_id)
    print(f"    → 시도 사이 간격은 {gaps}초입니다. 1, 2, 4 …초로 늘어나다가 {BACKOFF_MAX_SECONDS}초에서 멈춥니다.")
    expect("auto_retrying 의 간격(초)", gaps, [1, 2, 2])
    expect("auto_retrying 의 예외", type(error), ConnectionError)
    jittered.get(timeout=WAIT_SECONDS, propagate=False)
    _, jittered_gaps = show_attempts(jittered_id)
    print(f"    retry_jitter 를 기본값(True)으로 둔 auto_retrying_with_jitter 의 간격: {jittered_gaps}초")
    print("    → 간격마다 0초와 백오프 값(1, 2, 2초) 사이에서 무작위로 고릅니다. 실행할 때마다 달라질 수 있습니다.")
    ceilings = [1, 2, BACKOFF_MAX_SECONDS]
    expect("jitter 간격의 수", len(jittered_gaps), len(ceilings))
    expect(
        "jitter 간격이 백오프 값을 넘지 않음", all(g <= c for g, c in zip(jittered_gaps, ceilings, strict=False)), True
    )

    step_7_the_trap()


def step_7_the_trap():
    """autoretry_for 만 주고 간격을 주지 않으면 default_retry_delay(180초)를 기다린다."""
    step("7. autoretry_for 만 있고 retry_backoff 도 countdown도 없을 때의 함정")
    trap, trap_id = send(auto_retrying_slowly, expires=TRAP_EXPIRES_SECONDS)
    show("trap.state", state_after_waiting(trap), "RETRY")
    show("trap.info", trap.info)
    eta = scheduled_eta(trap.id, worker=first_attempt_worker(trap_id))
    delay = (datetime.fromisoformat(eta) - datetime.now().astimezone()).total_seconds() if eta else None
    inspected = "inspect(destination=[첫 시도를 실행한 워커]).scheduled()"
    print(f"    {inspected} → 다음 시도 eta={eta} (지금부터 약 {delay or 0:.0f}초 뒤)")
    print(
        f"    → 다음 시도까지 default_retry_delay({auto_retrying_slowly.default_retry_delay}초)를 기다립니다."
        f" 이 작업은 expires={TRAP_EXPIRES_SECONDS}초로 보냈으므로 다시 실행되지 않고 버려집니다."
    )
    expect("함정 작업의 다음 시도까지(초, 반올림)", round(delay, -1) if delay else None, 180)


def first_attempt_worker(run_id):
    """첫 시도를 실행한 워커의 노드 이름. 재시도 메시지는 그 워커가 eta까지 쥐고 있다."""
    return journal.read(run_id)[0]["worker"]


def scheduled_eta(task_id, worker):
    """worker가 eta까지 쥐고 있는 작업 중 task_id 의 eta (ISO 문자열). 못 찾으면 None.

    destination을 주면 그 워커의 답이 오는 즉시 돌아온다. 주지 않으면 워커가 몇인지 모르므로
    적어도 timeout 동안 답을 모은다.
    """
    replies = app.control.inspect(destination=[worker], timeout=INSPECT_SECONDS).scheduled() or {}
    for entries in replies.values():
        for entry in entries:
            if entry["request"]["id"] == task_id:
                return entry["eta"]
    return None


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
