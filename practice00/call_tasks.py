"""practice00 의 작업들을 차례로 호출하고, 부를 때마다 무엇이 돌아오는지 보여 준다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice00.tasks worker --loglevel=info
그다음:                             python -m practice00.call_tasks

모든 것이 README에 적힌 대로 동작하면 종료 코드 0, 하나라도 다르면 1로 끝난다.
"""

import sys
import time
import uuid
from datetime import UTC, datetime

from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as BrokerError
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.exc import OperationalError as DatabaseError

from global_config import POSTGRES_URL, RABBITMQ_URL
from practice00.tasks import COUNTDOWN_SECONDS, WORK_SECONDS, add, app, divide, slow_add

# 정상이라면 결과는 1초 안에 온다. 이만큼 기다려도 안 오면 워커가 없다고 본다.
RESULT_TIMEOUT = 10
# 없는 id 를 get() 으로 기다려 볼 시간.
UNKNOWN_ID_TIMEOUT = 1

WORKER_COMMAND = "celery -A practice00.tasks worker --loglevel=info"
surprises = []


def expect(what, actual, expected):
    """배운 대로 나왔는지 확인한다. 다르면 표시해 두고, 끝에 종료 코드 1로 알린다."""
    if actual != expected:
        surprises.append(what)
        print(f"    !! 예상과 다름: {what} = {actual!r} (예상: {expected!r})")


def step(title):
    print(f"\n[{title}]")


def run():
    step("1. delay() 로 보내고 get() 으로 결과 받기")
    result = add.delay(2, 3)
    print(f"    add.delay(2, 3)            → AsyncResult id={result.id}")
    value = result.get(timeout=RESULT_TIMEOUT)
    print(f"    result.get(timeout={RESULT_TIMEOUT})     → {value!r}")
    expect("add(2, 3)", value, 5)

    step("2. apply_async(): delay() 의 원래 모습, 실행 옵션을 줄 수 있다")
    value = add.apply_async(args=(2, 3)).get(timeout=RESULT_TIMEOUT)
    print(f"    add.apply_async(args=(2, 3)).get() → {value!r}   (delay(2, 3) 과 같다)")
    expect("apply_async(args=(2, 3))", value, 5)
    try:
        add.delay(2, 3, countdown=COUNTDOWN_SECONDS)
        expect("delay(..., countdown=...) 가 TypeError", "보내짐", "TypeError")
    except TypeError as exc:
        print(f"    add.delay(2, 3, countdown={COUNTDOWN_SECONDS}) → TypeError: {exc}")
        print("      (delay 는 모든 인자를 작업 인자로 넘긴다. 옵션은 apply_async 로만 줄 수 있다)")

    sent_at = datetime.now(UTC)
    result = add.apply_async(args=(4, 5), countdown=COUNTDOWN_SECONDS)
    print(f"    add.apply_async(args=(4, 5), countdown={COUNTDOWN_SECONDS})")
    print(f"      보낸 직후: ready()={result.ready()}, state={result.state}")
    expect("countdown 직후 ready()", result.ready(), False)
    value = result.get(timeout=RESULT_TIMEOUT + COUNTDOWN_SECONDS)
    waited = (result.date_done.replace(tzinfo=UTC) - sent_at).total_seconds()
    print(f"      get() → {value!r}, 보낸 뒤 {waited:.2f}초에 완료 (date_done 기준)")
    expect("countdown 작업의 값", value, 9)
    expect(f"{COUNTDOWN_SECONDS}초 전에는 실행되지 않음", waited >= COUNTDOWN_SECONDS, True)

    step(f"3. 상태 살펴보기: {WORK_SECONDS:g}초 걸리는 slow_add")
    result = slow_add.delay(1, 1)
    print(f"    slow_add.delay(1, 1) 직후: ready()={result.ready()}, state={result.state}")
    expect("실행 중 ready()", result.ready(), False)
    value = result.get(timeout=RESULT_TIMEOUT)
    print(f"    get() → {value!r}")
    print(f"    끝난 뒤: ready()={result.ready()}, successful()={result.successful()}, "
          f"failed()={result.failed()}, state={result.state}")  # fmt: skip
    expect("끝난 뒤 (ready, successful, failed, state)",
           (result.ready(), result.successful(), result.failed(), result.state),
           (True, True, False, "SUCCESS"))  # fmt: skip

    step("4. 실패하는 작업: divide(1, 0)")
    result = divide.delay(1, 0)
    error = result.get(timeout=RESULT_TIMEOUT, propagate=False)
    print(f"    get(propagate=False) → {error!r}   (예외를 던지지 않고 예외 객체를 돌려준다)")
    print(f"    ready()={result.ready()}, successful()={result.successful()}, "
          f"failed()={result.failed()}, state={result.state}")  # fmt: skip
    expect("get(propagate=False) 의 타입", type(error), ZeroDivisionError)
    expect("실패 후 (successful, failed, state)",
           (result.successful(), result.failed(), result.state), (False, True, "FAILURE"))  # fmt: skip
    last_line = result.traceback.strip().splitlines()[-1]
    print(f"    traceback 의 마지막 줄: {last_line}")
    expect("traceback 마지막 줄", last_line, "ZeroDivisionError: division by zero")
    try:
        result.get(timeout=RESULT_TIMEOUT)
        expect("get() 이 예외를 다시 던짐", "던지지 않음", "ZeroDivisionError")
    except ZeroDivisionError as exc:
        print(f"    get() → 워커에서 난 예외를 호출한 쪽에서 다시 던진다: ZeroDivisionError({exc})")

    step("5. 모르는 id: PENDING 은 '대기 중'이 아니라 '모른다'")
    unknown = AsyncResult(str(uuid.uuid4()), app=app)
    print(f"    AsyncResult('{unknown.id}').state → {unknown.state}")
    expect("모르는 id 의 state", unknown.state, "PENDING")
    started = time.monotonic()
    try:
        unknown.get(timeout=UNKNOWN_ID_TIMEOUT)
        expect("모르는 id 의 get()", "값이 옴", "TimeoutError")
    except CeleryTimeoutError:
        waited = time.monotonic() - started
        print(f"    get(timeout={UNKNOWN_ID_TIMEOUT}) → {waited:.1f}초 뒤 celery.exceptions.TimeoutError")
        print("      timeout 이 없으면 get() 은 영원히 기다린다. 그래서 이 강좌의 모든 get() 에는 timeout 이 있다.")


def main():
    try:
        run()
    except CeleryTimeoutError:
        print(f"\n결과가 {RESULT_TIMEOUT}초 안에 오지 않았습니다. practice00 워커가 돌고 있나요?")
        print(f"다른 터미널에서 워커를 띄우세요:\n    {WORKER_COMMAND}")
        print("(이미 보낸 작업은 practice00 큐에 남아 있다가, 워커가 뜨면 실행됩니다.)")
        return 1
    except BrokerError as exc:
        print(f"\nRabbitMQ({RABBITMQ_URL})에 연결할 수 없습니다: {exc}")
        print("RabbitMQ를 켜세요:  docker compose up -d rabbitmq")
        return 1
    except DatabaseError as exc:
        print(f"\n결과 백엔드 PostgreSQL({maybe_sanitize_url(POSTGRES_URL)})에 연결할 수 없습니다:")
        print(f"    {str(exc).splitlines()[0]}")
        print("PostgreSQL을 켜세요:  docker compose up -d postgres")
        return 1
    if surprises:
        print(f"\n예상과 다른 결과 {len(surprises)}개: {', '.join(surprises)}")
        return 1
    print("\n모든 호출이 README 에 적힌 대로 동작했습니다.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
