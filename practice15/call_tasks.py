"""practice15: 같은 작업을 eager로 한 번, 실제 워커로 한 번 불러 나란히 보인다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice15.tasks worker --loglevel=info
"""

import sys
import time
from contextlib import contextmanager

from billiard.exceptions import TimeLimitExceeded
from kombu.exceptions import EncodeError

from course import WAIT_SECONDS, Scenario
from practice15.tasks import (
    COUNTDOWN_SECONDS,
    MAX_RETRIES,
    RETRY_SECONDS,
    TIME_LIMIT_SECONDS,
    add,
    app,
    count_by_id,
    fail,
    flaky,
    pair,
    slow,
    unique,
)

scenario = Scenario(app)
step, show = scenario.step, scenario.show


@contextmanager
def always_eager(propagates=False):
    """블록 안에서만 task_always_eager 를 켠다. 테스트 설정에서 흔히 켜는 값으로, 켜면 app의 delay() 와
    apply_async() 가 eager로 실행된다."""
    app.conf.update(task_always_eager=True, task_eager_propagates=propagates)
    try:
        yield
    finally:
        app.conf.update(task_always_eager=False, task_eager_propagates=False)


def timed(call):
    """call() 이 돌려준 값과 걸린 시간(초)을 돌려준다."""
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started


def values():
    show("pair.apply((1, 2)).get()", pair.apply((1, 2)).get(), (1, 2))
    show("pair.delay(1, 2).get()", pair.delay(1, 2).get(timeout=WAIT_SECONDS), [1, 2], note="JSON에는 튜플이 없습니다")
    show("count_by_id.apply(([7, 7, 8],)).get()", count_by_id.apply(([7, 7, 8],)).get(), {7: 2, 8: 1})
    real = count_by_id.delay([7, 7, 8]).get(timeout=WAIT_SECONDS)
    show("count_by_id.delay([7, 7, 8]).get()", real, {"7": 2, "8": 1}, note="JSON 객체의 키는 문자열입니다")
    show("unique.apply((['a', 'a'],)).get()", unique.apply((["a", "a"],)).get(), {"a"})
    with scenario.raises(EncodeError) as refused:
        unique.delay(["a", "a"]).get(timeout=WAIT_SECONDS)
    show(
        "unique.delay(['a', 'a']).get()",
        type(refused.exc).__name__,
        "EncodeError",
        note="워커가 set을 저장하지 못했습니다",
    )
    with scenario.raises(EncodeError) as refused:
        unique.delay({"a"})
    show("unique.delay({'a'})", type(refused.exc).__name__, "EncodeError", note="보내는 순간 실패합니다")


def timing():
    (value, seconds) = timed(lambda: slow.apply().get())
    show(
        "slow.apply().get()",
        value,
        "끝",
        note=f"시간 제한 {TIME_LIMIT_SECONDS}초를 넘겨 {seconds:.0f}초 동안 실행되었습니다",
    )
    with scenario.raises(TimeLimitExceeded) as killed:
        slow.delay().get(timeout=WAIT_SECONDS)
    show("slow.delay().get()", type(killed.exc).__name__, "TimeLimitExceeded")
    with always_eager():
        (state, seconds) = timed(lambda: add.apply_async((2, 3), countdown=COUNTDOWN_SECONDS).state)
    show(
        f"eager 앱의 add.apply_async((2, 3), countdown={COUNTDOWN_SECONDS}).state",
        state,
        "SUCCESS",
        note="곧바로 실행되었습니다",
    )
    scenario.expect("eager 앱이 countdown을 기다리지 않았다", seconds < COUNTDOWN_SECONDS, True)
    result = add.apply_async((2, 3), countdown=COUNTDOWN_SECONDS)
    show(f"add.apply_async((2, 3), countdown={COUNTDOWN_SECONDS}).state", result.state, "PENDING")
    result.get(timeout=WAIT_SECONDS + COUNTDOWN_SECONDS)
    (value, seconds) = timed(lambda: flaky.apply().get())
    show(
        "flaky.apply().get()", value, MAX_RETRIES, note=f"재시도 {MAX_RETRIES}번이 이 호출 안에서 곧바로 실행되었습니다"
    )
    scenario.expect("eager 재시도가 간격을 기다리지 않았다", seconds < RETRY_SECONDS, True)
    (value, seconds) = timed(lambda: flaky.delay().get(timeout=WAIT_SECONDS + MAX_RETRIES * RETRY_SECONDS))
    show("flaky.delay().get()", value, MAX_RETRIES)
    show(f"재시도 간격 {RETRY_SECONDS}초를 {MAX_RETRIES}번 기다렸습니다", seconds >= MAX_RETRIES * RETRY_SECONDS, True)


def results():
    eager = add.apply((2, 3))
    show("type(add.apply((2, 3)))", type(eager).__name__, "EagerResult", note=f"state={eager.state}")
    show("결과 백엔드에서 읽은 그 id의 state", app.AsyncResult(eager.id).state, "PENDING", note="저장되지 않았습니다")
    real = add.delay(2, 3)
    show("type(add.delay(2, 3))", type(real).__name__, "AsyncResult", note="get() 으로 기다립니다")
    real.get(timeout=WAIT_SECONDS)
    show("결과 백엔드에서 읽은 그 id의 state", app.AsyncResult(real.id).state, "SUCCESS")
    failed = fail.apply()
    show("fail.apply().state", failed.state, "FAILURE", note="task_eager_propagates=False: 호출은 예외 없이 끝났습니다")
    with always_eager(propagates=True), scenario.raises(ValueError) as raised:
        fail.delay()
    show("task_eager_propagates=True 인 eager 앱의 fail.delay()", type(raised.exc).__name__, "ValueError")


def calls():
    step("1. 돌려준 값: eager는 JSON을 거치지 않습니다")
    values()
    step("2. 시간 제한, countdown, 재시도: eager는 시간 제한을 걸지 않고 기다리지도 않습니다")
    timing()
    step("3. 결과 객체와 예외: EagerResult는 결과 백엔드에 남지 않습니다")
    results()


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
