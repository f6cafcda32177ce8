"""practice08의 작업이 일하다가 자기 프로세스를 죽인다. 메시지가 어떻게 되는지 호출하는 쪽에서 지켜본다.

먼저 다른 터미널에서 워커를 띄운다:  celery -A practice08.tasks worker --loglevel=info
그다음:                             python -m practice08.call_tasks
"""

import sys

from billiard.exceptions import WorkerLostError

from course import WAIT_SECONDS, Journal, Scenario, wait_until
from practice08.tasks import (
    POISON_RUNS,
    app,
    bounce,
    charge,
    create_tables,
    dead_lettered,
    declare_dead_letters,
    early_ack,
    effects,
    journal,
    late_ack,
    late_ack_requeued,
    retried_on_lost,
)

scenario = Scenario(app)
step, show, expect = scenario.step, scenario.show, scenario.expect


def crash(task):
    """task를 첫 실행에서 죽도록 보내고 (결과, 실행 기록)을 돌려준다. 결과는 예외도 값으로 받는다."""
    run_id = Journal.new_run()
    value = task.delay(run_id).get(timeout=WAIT_SECONDS, propagate=False)
    return value, journal.read(run_id)


def redelivered(runs):
    return [run["redelivered"] for run in runs]


def calls():
    step("1. 시작 시 ack(기본값)는 실행을 시작할 때 ack하므로, 풀 프로세스가 죽으면 FAILURE가 됩니다")
    value, runs = crash(early_ack)
    show("early_ack.delay(run_id).get(propagate=False)", value)
    expect("early_ack 의 예외", type(value), WorkerLostError)
    show("실행 횟수", len(runs), 1, note="메시지는 이미 ack되어 다시 오지 않습니다")

    step("2. acks_late=True 만 주면 ack를 작업이 끝난 뒤로 미루지만, 풀 프로세스가 죽어도 ack하고 FAILURE가 됩니다")
    value, runs = crash(late_ack)
    show("late_ack.delay(run_id).get(propagate=False)", value)
    expect("late_ack 의 예외", type(value), WorkerLostError)
    show("실행 횟수", len(runs), 1, note="acks_on_failure=True 라서 ack했습니다")

    step("3. acks_late=True 에 reject_on_worker_lost=True 를 더하면 큐로 돌아가 다시 실행됩니다")
    value, runs = crash(late_ack_requeued)
    show("late_ack_requeued.delay(run_id).get()", value, "끝남: 2번째 실행")
    show("실행마다 delivery_info['redelivered']", redelivered(runs), [False, True])

    step("4. retry_on_worker_lost=True 를 주면 죽을 때 재시도로 다시 보냅니다 (Celery 5.7)")
    value, runs = crash(retried_on_lost)
    show("retried_on_lost.delay(run_id).get()", value, "끝남: 2번째 실행")
    show("실행마다 request.retries", [run["retries"] for run in runs], [0, 1], note="재전달이 아닌 새 메시지입니다")

    step("5. 효과를 커밋한 뒤 ack하기 전에 죽어 다시 실행되는 작업")
    create_tables()
    run = Journal.new_run()
    guarded = charge.delay(run, 1, guarded=True, crash_after_commit=True)
    unguarded = charge.delay(run, 2, guarded=False, crash_after_commit=True)
    guarded.get(timeout=WAIT_SECONDS), unguarded.get(timeout=WAIT_SECONDS)
    payments, charges, runs = effects(run)
    show("INSERT … ON CONFLICT DO NOTHING (결제 1)의 행 수", payments, 1, note="두 번 실행됐어도 행은 하나입니다")
    show("키 없는 INSERT (결제 2)의 행 수", charges, 2, note="두 번 실행되어 두 번 결제했습니다")
    show("두 작업의 실행 횟수", runs, 4)

    step("6. 매번 실패하는 작업(poison message)은 클래식 큐에서 끝없이, 쿼럼 큐에서 배달 한도까지 되돌아옵니다")
    run_id = Journal.new_run()
    looping = bounce.delay(run_id)
    runs = journal.wait_for(run_id, POISON_RUNS)
    show(
        "클래식 큐에서 실행별 redelivered",
        redelivered(runs[:POISON_RUNS]),
        [False, True, True],
        note="끊을 때까지 계속 돌아옵니다",
    )
    app.control.revoke(looping.id)
    wait_until(lambda: looping.state == "REVOKED", "bounce의 REVOKED 상태")
    show("revoke한 뒤 state", looping.state, "REVOKED")
    declare_dead_letters()
    run_id = Journal.new_run()
    limited = bounce.apply_async((run_id,), queue="practice08.quorum")
    headers = wait_until(lambda: dead_lettered(limited.id), "dead-letter 큐에 온 bounce의 메시지")
    show("쿼럼 큐에서 실행별 redelivered", redelivered(journal.read(run_id)), [False, True, True])
    show("dead-letter 큐에 온 메시지의 x-first-death-reason", headers["x-first-death-reason"], "delivery_limit")


if __name__ == "__main__":
    sys.exit(scenario.run(calls))
