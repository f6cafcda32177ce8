"""practice00의 작업들을 차례로 호출하고, 부를 때마다 돌아오는 값을 보여 준다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice00.tasks worker --loglevel=info
그다음:                             python -m practice00.call_tasks

모든 호출이 README에 적힌 대로 동작하면 종료 코드 0으로 끝난다. 하나라도 다르면 1로 끝난다.
"""

import sys
import uuid
from datetime import UTC, datetime

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult

from course import WAIT_SECONDS, Scenario
from practice00.tasks import COUNTDOWN_SECONDS, UNKNOWN_ID_TIMEOUT_SECONDS, WORK_SECONDS, add, app, divide, slow_add

# 데이터베이스 결과 백엔드는 결과가 왔다고 알려 주지 않는다. 그래서 get() 은 interval 초(기본 0.5)마다
# 테이블을 다시 읽는다. 간격을 줄이면 더 빨리 돌려받는다. 그 대신 데이터베이스를 그만큼 자주 읽는다.
POLL_INTERVAL_SECONDS = 0.1

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect


def calls():
    step("1. delay() 로 보내고 get() 으로 결과 받기")
    result = show("add.delay(2, 3)", add.delay(2, 3))
    show("result.get()", result.get(timeout=WAIT_SECONDS, interval=POLL_INTERVAL_SECONDS), 5)

    step("2. apply_async(): 실행 옵션을 받는 delay() 의 원래 형태")
    show(
        "add.apply_async(args=(2, 3)).get()",
        add.apply_async(args=(2, 3)).get(timeout=WAIT_SECONDS, interval=POLL_INTERVAL_SECONDS),
        5,
    )
    with scenario.raises(TypeError) as refused:
        add.delay(2, 3, countdown=COUNTDOWN_SECONDS)
    show(f"add.delay(2, 3, countdown={COUNTDOWN_SECONDS})", refused.exc, note="옵션은 apply_async 로만 줍니다")

    sent_at = datetime.now(UTC)
    result = show(
        f"add.apply_async(args=(4, 5), countdown={COUNTDOWN_SECONDS})",
        add.apply_async(args=(4, 5), countdown=COUNTDOWN_SECONDS),
    )
    show("보낸 직후 result.ready()", result.ready(), False)
    show(
        "result.get()",
        result.get(timeout=WAIT_SECONDS + COUNTDOWN_SECONDS, interval=POLL_INTERVAL_SECONDS),
        9,
    )
    waited = (result.date_done.replace(tzinfo=UTC) - sent_at).total_seconds()
    print(f"      보낸 뒤 {waited:.2f}초에 끝났습니다 (date_done 기준)")
    expect(f"{COUNTDOWN_SECONDS}초 전에는 실행되지 않음", waited >= COUNTDOWN_SECONDS, True)

    step(f"3. {WORK_SECONDS:g}초 걸리는 slow_add 의 상태")
    result = slow_add.delay(1, 1)
    show("slow_add.delay(1, 1) 직후 (ready(), state)", (result.ready(), result.state), (False, "PENDING"))
    show("result.get()", result.get(timeout=WAIT_SECONDS, interval=POLL_INTERVAL_SECONDS), 2)
    finished = (result.ready(), result.successful(), result.failed(), result.state)
    show("끝난 뒤 (ready(), successful(), failed(), state)", finished, (True, True, False, "SUCCESS"))

    step("4. 실패하는 작업: divide(1, 0)")
    result = divide.delay(1, 0)
    error = result.get(timeout=WAIT_SECONDS, propagate=False, interval=POLL_INTERVAL_SECONDS)
    show("result.get(propagate=False)", error, note="던지지 않고 예외 객체를 돌려줍니다")
    expect("get(propagate=False) 의 타입", type(error), ZeroDivisionError)
    failed = (result.ready(), result.successful(), result.failed(), result.state)
    show("(ready(), successful(), failed(), state)", failed, (True, False, True, "FAILURE"))
    show(
        "result.traceback 의 마지막 줄",
        result.traceback.strip().splitlines()[-1],
        "ZeroDivisionError: division by zero",
    )
    with scenario.raises(ZeroDivisionError) as rethrown:
        result.get(timeout=WAIT_SECONDS, interval=POLL_INTERVAL_SECONDS)
    show("result.get()", rethrown.exc, note="워커에서 난 예외를 호출하는 쪽에서 다시 던집니다")

    step_5_an_unknown_id()


def step_5_an_unknown_id():
    """모르는 id의 AsyncResult: 결과 백엔드가 모르는 id도 PENDING이다."""
    step("5. 모르는 id: '대기 중'이 아니라 '모른다'는 뜻의 PENDING")
    unknown = AsyncResult(str(uuid.uuid4()), app=app)
    show(f"AsyncResult('{unknown.id}').state", unknown.state, "PENDING")
    with scenario.raises(CeleryTimeoutError) as gave_up:
        unknown.get(timeout=UNKNOWN_ID_TIMEOUT_SECONDS, interval=POLL_INTERVAL_SECONDS)
    show(
        f"get(timeout={UNKNOWN_ID_TIMEOUT_SECONDS})",
        gave_up.exc,
        note=f"{gave_up.seconds:.1f}초 뒤에 기다림을 그만둡니다. timeout이 없으면 영원히 기다립니다",
    )


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
