"""practice01의 작업들로 하드 제한과 소프트 제한을 호출하는 쪽에서 지켜본다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice01.tasks worker --loglevel=info
그다음:                             python -m practice01.call_tasks
"""

import sys
import time

from celery.exceptions import TimeLimitExceeded

from course import WAIT_SECONDS, Scenario
from practice01.tasks import (
    HARD_LIMIT_SECONDS,
    KILL_SETTLE_SECONDS,
    SOFT_LIMIT_SECONDS,
    app,
    batch_with_cleanup,
    hard_limited,
    journal,
    misconfigured,
    send,
    slow_cleanup,
    unlimited,
)

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect


def call(task, label, settle=0):
    """run_id 를 붙여 작업을 보내고, 끝나면 작업이 남긴 흔적을 찍은 뒤 (결과, 값, 실행 기록)을 돌려준다."""
    started = time.monotonic()
    result, run_id = send(task)
    value = result.get(timeout=WAIT_SECONDS, propagate=False)
    seconds = time.monotonic() - started
    print(f"    {label} → state={result.state}, {seconds:.1f}초, get(propagate=False) = {value!r}")
    time.sleep(settle)
    entries = journal.read(run_id)
    print(f"    작업이 남긴 흔적: {[entry.what for entry in entries]}")
    return result, value, entries


def calls():
    step("1. 제한 없는 작업")
    result = unlimited.delay()
    result.get(timeout=WAIT_SECONDS)  # 실행한 풀 프로세스의 pid
    show("unlimited.delay() 의 state", result.state, "SUCCESS")

    step(f"2. 하드 제한만: hard_limited (time_limit={HARD_LIMIT_SECONDS}초, 4초짜리 일)")
    result, value, entries = call(hard_limited, "hard_limited.delay(run_id)", settle=KILL_SETTLE_SECONDS)
    notes = [entry.what for entry in entries]
    expect("하드 제한의 state", result.state, "FAILURE")
    expect("하드 제한의 예외", type(value), TimeLimitExceeded)
    expect("하드 제한 뒤 finally가 끝까지 실행됨", "finally 끝" in notes, False)
    killed_pid = entries[0].pid if entries else None  # "시작"을 적은 풀 프로세스
    began = "시작했지만 끝나지 못했습니다" if "finally 시작" in notes else "시작하지도 못했습니다"
    print(f"    → 풀 프로세스는 SIGTERM을 받고, 약 0.1초 뒤 SIGKILL로 끝났습니다. finally는 {began}.")

    step("3. 죽은 프로세스 대신 새 프로세스를 띄워 계속 일하는 워커")
    results = [unlimited.delay() for _ in range(2)]
    pids = sorted({r.get(timeout=WAIT_SECONDS) for r in results})
    print(f"    unlimited.delay() 두 번 → 둘 다 SUCCESS, 실행한 pid {pids}, 하드 제한으로 죽은 pid {killed_pid}")
    print("    (워커 로그: Process 'ForkPoolWorker-N' pid:… exited with 'signal 9 (SIGKILL)')")
    expect("죽은 pid가 다시 일함", killed_pid in pids, False)

    limits = f"soft_time_limit={SOFT_LIMIT_SECONDS}초, time_limit={HARD_LIMIT_SECONDS}초"
    step(f"4. 소프트 제한: batch_with_cleanup ({limits})")
    result, value, _ = call(batch_with_cleanup, "batch_with_cleanup.delay(run_id)")
    print("    → 작업이 SoftTimeLimitExceeded를 잡아 정리하고 값을 돌려주었습니다. 상태는 SUCCESS입니다.")
    expect("소프트 제한 뒤 state", result.state, "SUCCESS")
    expect("정리했다는 반환값", isinstance(value, dict) and value.get("cleaned_up"), True)

    step("5. 여유보다 긴 정리: slow_cleanup (정리에 2초, 여유는 1초)")
    result, value, entries = call(slow_cleanup, "slow_cleanup.delay(run_id)", settle=KILL_SETTLE_SECONDS)
    print("    → 정리 도중에 하드 제한이 와서 프로세스가 죽었습니다. '정리 끝' 기록은 없습니다.")
    expect("느린 정리의 state", result.state, "FAILURE")
    expect("느린 정리의 예외", type(value), TimeLimitExceeded)
    expect("느린 정리가 끝남", "정리 끝" in [entry.what for entry in entries], False)

    step("6. 호출할 때 거절되는 설정: time_limit 보다 긴 soft_time_limit")
    with scenario.raises(ValueError) as refused:
        misconfigured.delay()
    show("misconfigured.delay()", refused.exc, note="보내기 전에 거절됩니다")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
