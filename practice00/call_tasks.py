"""practice00 의 작업들을 차례로 호출하고, 부를 때마다 무엇이 돌아오는지 보여 준다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice00.tasks worker --loglevel=info
그다음:                             python -m practice00.call_tasks

모든 것이 README에 적힌 대로 동작하면 종료 코드 0, 하나라도 다르면 1로 끝난다.
"""

import sys
import uuid
from datetime import UTC, datetime

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult

from course import RESULT_TIMEOUT, Scenario
from practice00.tasks import COUNTDOWN_SECONDS, UNKNOWN_ID_TIMEOUT, WORK_SECONDS, add, app, divide, slow_add

# 데이터베이스 결과 백엔드는 결과가 왔다고 알려 주지 않는다. get() 은 interval 초(기본 0.5)마다 테이블을
# 다시 읽는다. 간격을 줄이면 더 빨리 돌려받는 대신 데이터베이스를 그만큼 자주 읽는다.
POLL_INTERVAL = 0.1

scenario = Scenario(app)
step, expect = scenario.step, scenario.expect


def calls():
    step("1. delay() 로 보내고 get() 으로 결과 받기")
    result = add.delay(2, 3)
    print(f"    add.delay(2, 3)            → AsyncResult id={result.id}")
    value = result.get(timeout=RESULT_TIMEOUT, interval=POLL_INTERVAL)
    print(f"    result.get(timeout={RESULT_TIMEOUT}, interval={POLL_INTERVAL}) → {value!r}")
    expect("add(2, 3)", value, 5)

    step("2. apply_async(): delay() 의 원래 모습, 실행 옵션을 줄 수 있다")
    value = add.apply_async(args=(2, 3)).get(timeout=RESULT_TIMEOUT, interval=POLL_INTERVAL)
    print(f"    add.apply_async(args=(2, 3)).get() → {value!r}   (delay(2, 3) 과 같다)")
    expect("apply_async(args=(2, 3))", value, 5)
    with scenario.raises(TypeError) as refused:
        add.delay(2, 3, countdown=COUNTDOWN_SECONDS)
    print(f"    add.delay(2, 3, countdown={COUNTDOWN_SECONDS}) → TypeError: {refused.exc}")
    print("      (delay 는 모든 인자를 작업 인자로 넘긴다. 옵션은 apply_async 로만 줄 수 있다)")

    sent_at = datetime.now(UTC)
    result = add.apply_async(args=(4, 5), countdown=COUNTDOWN_SECONDS)
    print(f"    add.apply_async(args=(4, 5), countdown={COUNTDOWN_SECONDS})")
    print(f"      보낸 직후: ready()={result.ready()}, state={result.state}")
    expect("countdown 직후 ready()", result.ready(), False)
    value = result.get(timeout=RESULT_TIMEOUT + COUNTDOWN_SECONDS, interval=POLL_INTERVAL)
    waited = (result.date_done.replace(tzinfo=UTC) - sent_at).total_seconds()
    print(f"      get() → {value!r}, 보낸 뒤 {waited:.2f}초에 완료 (date_done 기준)")
    expect("countdown 작업의 값", value, 9)
    expect(f"{COUNTDOWN_SECONDS}초 전에는 실행되지 않음", waited >= COUNTDOWN_SECONDS, True)

    step(f"3. 상태 살펴보기: {WORK_SECONDS:g}초 걸리는 slow_add")
    result = slow_add.delay(1, 1)
    print(f"    slow_add.delay(1, 1) 직후: ready()={result.ready()}, state={result.state}")
    expect("실행 중 ready()", result.ready(), False)
    value = result.get(timeout=RESULT_TIMEOUT, interval=POLL_INTERVAL)
    print(f"    get() → {value!r}")
    finished = (result.ready(), result.successful(), result.failed(), result.state)
    print("    끝난 뒤: ready()={}, successful()={}, failed()={}, state={}".format(*finished))
    expect("끝난 뒤 (ready, successful, failed, state)", finished, (True, True, False, "SUCCESS"))

    step("4. 실패하는 작업: divide(1, 0)")
    result = divide.delay(1, 0)
    error = result.get(timeout=RESULT_TIMEOUT, propagate=False, interval=POLL_INTERVAL)
    print(f"    get(propagate=False) → {error!r}   (예외를 던지지 않고 예외 객체를 돌려준다)")
    failed = (result.ready(), result.successful(), result.failed(), result.state)
    print("    ready()={}, successful()={}, failed()={}, state={}".format(*failed))
    expect("get(propagate=False) 의 타입", type(error), ZeroDivisionError)
    expect("실패 후 (ready, successful, failed, state)", failed, (True, False, True, "FAILURE"))
    last_line = result.traceback.strip().splitlines()[-1]
    print(f"    traceback 의 마지막 줄: {last_line}")
    expect("traceback 마지막 줄", last_line, "ZeroDivisionError: division by zero")
    with scenario.raises(ZeroDivisionError) as rethrown:
        result.get(timeout=RESULT_TIMEOUT, interval=POLL_INTERVAL)
    print(f"    get() → 워커에서 난 예외를 호출한 쪽에서 다시 던진다: ZeroDivisionError({rethrown.exc})")

    step("5. 모르는 id: PENDING 은 '대기 중'이 아니라 '모른다'")
    unknown = AsyncResult(str(uuid.uuid4()), app=app)
    print(f"    AsyncResult('{unknown.id}').state → {unknown.state}")
    expect("모르는 id 의 state", unknown.state, "PENDING")
    with scenario.raises(CeleryTimeoutError) as gave_up:
        unknown.get(timeout=UNKNOWN_ID_TIMEOUT, interval=POLL_INTERVAL)
    print(f"    get(timeout={UNKNOWN_ID_TIMEOUT}) → {gave_up.seconds:.1f}초 뒤 celery.exceptions.TimeoutError")
    print("      timeout 이 없으면 get() 은 영원히 기다린다. 그래서 이 강좌의 모든 get() 에는 timeout 이 있다.")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
