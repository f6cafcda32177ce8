"""practice03의 group과 chord를 호출하고, chord의 콜백이 마지막 작업 뒤 얼마 만에 시작했는지 잰다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice03.tasks worker --loglevel=info
그다음:                             python -m practice03.call_tasks
PostgreSQL 결과 백엔드로 해 보려면 두 명령 모두 앞에 PRACTICE03_BACKEND=postgres 를 붙인다.
"""

import sys
import time

from celery import Celery, chord, group

from course import WAIT_SECONDS, Scenario
from global_config import RABBITMQ_URL
from practice03.tasks import BACKEND, LONG_SECONDS, SHORT_SECONDS, app, fetch, merge

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect

# 첫 번째 조각만 길고 나머지는 짧다. 그래서 끝나는 순서는 2, 3, 4, 1이 된다.
HEADER = [(1, LONG_SECONDS), (2, SHORT_SECONDS), (3, SHORT_SECONDS), (4, SHORT_SECONDS)]


def signatures():
    return [fetch.s(part, seconds) for part, seconds in HEADER]


def calls():
    print(f"결과 백엔드: {BACKEND}")

    step(f"1. group: 네 작업을 나란히 실행합니다 (1번째만 {LONG_SECONDS}초, 나머지는 {SHORT_SECONDS}초)")
    started = time.time()
    pieces = group(signatures()).apply_async().get(timeout=WAIT_SECONDS)
    finished_order = [piece["part"] for piece in sorted(pieces, key=lambda piece: piece["finished_at"])]
    show("group(...).apply_async().get() 의 part", [piece["part"] for piece in pieces], [1, 2, 3, 4], note="부른 순서")
    for piece in pieces:
        print(f"      {piece['part']}번째 조각: 보낸 뒤 {piece['finished_at'] - started:.2f}초에 끝났습니다")
    print(f"    끝난 순서: {finished_order}")
    print("    결과 목록은 끝난 순서가 아니라 부른 순서입니다")
    expect("가장 늦게 끝난 조각", finished_order[-1], 1)

    step("2. chord: 다 끝나면 콜백 merge가 결과 목록을 받습니다")
    merged = chord(signatures())(merge.s()).get(timeout=WAIT_SECONDS)
    delay = merged["started_at"] - merged["last_header_finished_at"]
    show("chord(header)(merge.s()).get()['parts']", merged["parts"], [1, 2, 3, 4], note="header 순서")
    print(f"    마지막 header 작업이 끝나고 콜백이 시작하기까지: {delay * 1000:.1f} ms")
    if BACKEND == "redis":
        print("    → Redis: 마지막 결과를 저장한 워커가 곧바로 콜백을 보냅니다")
    else:
        print("    → PostgreSQL: celery.chord_unlock 이 1초마다 확인합니다. 워커 로그에서 chord_unlock 을 찾아보세요")
    expect("콜백은 가장 느린 작업 뒤에 시작", delay >= 0, True)

    step("3. rpc:// 결과 백엔드는 chord를 실행하지 못합니다")
    rpc_app = Celery("practice03_rpc", broker=RABBITMQ_URL, backend="rpc://")
    header = [rpc_app.signature(fetch.name, args=(part, seconds)) for part, seconds in HEADER]
    with scenario.raises(NotImplementedError) as refused:
        chord(header)(rpc_app.signature(merge.name))
    print(f"    chord(...) → NotImplementedError: {str(refused.exc).strip().splitlines()[0]}")
    print("      (보내기 전에 호출하는 쪽에서 거절됩니다)")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
