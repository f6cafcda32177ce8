"""practice09 README: link, link_error(두 모양의 errback, 함정들), 실패하는 chain/chord, 진행률, chunks/map/starmap."""

from __future__ import annotations

import re
import uuid

import pytest
from celery import chain, chord

from course import Journal, never_within, wait_until
from playground.broker import queue_counts
from playground.lessons import run_call_tasks
from playground.workers import Worker, running
from practice09.tasks import (
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
from tests import CALL_TIMEOUT_SECONDS, WAIT_SECONDS

LESSON = "practice09"
# 이 모듈의 테스트들은 워커 하나(conftest.py 의 worker)를 함께 쓴다. 그래서 한 테스트 프로세스에 모은다.
pytestmark = pytest.mark.xdist_group(LESSON)

SETTLE_SECONDS = 1  # "오지 않는다"를 보려고 더 기다려 보는 시간


def test_the_link_callback_gets_the_return_value_as_its_first_argument(worker):
    run = Journal.new_run()
    assert add.apply_async((2, 3), link=record.s(run=run)).get(timeout=WAIT_SECONDS) == 5
    assert [entry["value"] for entry in journal.wait_for(run, 1, timeout=WAIT_SECONDS)] == [5]


def test_a_three_parameter_errback_gets_the_request_and_runs_in_the_failing_pool_process(worker):
    run = Journal.new_run()
    failed = fail.apply_async((7,), {"run": run}, link_error=on_error.s(run=run))
    assert isinstance(failed.get(timeout=WAIT_SECONDS, propagate=False), ValueError)
    ran, seen = journal.wait_for(run, 1, what="on_error", timeout=WAIT_SECONDS)
    assert (ran.what, seen.what) == ("fail", "on_error")
    assert (seen["id"], seen["task"], seen["args"]) == (failed.id, "practice09.tasks.fail", [7])
    assert seen["hostname"] == worker.node
    assert seen.pid == ran.pid != worker.proc.pid
    assert not re.search(r"practice09\.tasks\.on_error\[\S+\] received", worker.log)  # 메시지로 가지 않았다


def test_a_bound_errback_taking_self_and_task_id_gets_its_own_message_whose_parent_is_the_failed_task(worker):
    run = Journal.new_run()
    failed = fail.apply_async((9,), {"run": run}, link_error=on_error_bound_id.s(run=run))
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    _, seen = journal.wait_for(run, 1, what="on_error_bound_id", timeout=WAIT_SECONDS)
    assert seen["id"] == seen["parent_id"] == failed.id  # 실패한 id를 받은, 자기 메시지의 작업


def test_celery_checks_an_errbacks_arguments_before_sending_it():
    # 보내기 전의 인자 검사(typing, 기본값 True): (self, request, exc, traceback) 에 (task_id,) 만 주면
    # 보내지 않고 TypeError.
    assert on_error_bound.typing is True
    with pytest.raises(TypeError, match=r"on_error_bound\(\) missing 2 required positional arguments: 'exc' and"):
        on_error_bound.apply_async(("some-task-id",), {"run": "r"})


def test_a_bound_errback_with_request_exc_traceback_is_never_sent_and_overwrites_the_failed_result(worker):
    run = Journal.new_run()
    errbacks = [on_error_bound_id.s(run=run), on_error_bound.s(run=run), on_error_id.s(run=run)]
    failed = fail.apply_async((12,), {"run": run}, link_error=errbacks)
    # get() 은 원래의 ValueError를 읽을 수도, 그것을 덮어쓴 TypeError를 읽을 수도 있다(읽는 때에 따라).
    # 그래서 끝나기만 기다린다.
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    journal.wait_for(run, 3, what="on_error_bound_id", timeout=WAIT_SECONDS)  # 앞에 둔 errback은 세 번 보내진다
    # 그 뒤로는 아무것도 적히지 않는다. 앞의 것이 네 번째로 오지도, 뒤에 둔 것이 가지도 않는다.
    expected = ["fail"] + ["on_error_bound_id"] * 3
    never_within(SETTLE_SECONDS, lambda: journal.whats(run) != expected, "세 번 뒤의 errback 실행 기록")
    assert not re.search(r"practice09\.tasks\.on_error_bound\[\S+\] received", worker.log)
    overwritten = app.AsyncResult(failed.id)
    assert overwritten.state == "FAILURE"
    assert isinstance(overwritten.result, TypeError)
    assert "missing 2 required positional arguments: 'exc' and 'traceback'" in str(overwritten.result)
    assert "RuntimeWarning: Exception raised outside body: TypeError(" in worker.log


def test_an_exception_inside_an_errback_is_only_logged(worker):
    run = Journal.new_run()
    failed = fail.apply_async((13,), {"run": run}, link_error=[on_error_raises.s(run=run), on_error.s(run=run)])
    failed.get(timeout=WAIT_SECONDS, propagate=False)
    whats = [entry.what for entry in journal.wait_for(run, 1, what="on_error", timeout=WAIT_SECONDS)]
    assert whats == ["fail", "on_error_raises", "on_error"]  # 뒤의 errback도 불렸다
    stored = app.AsyncResult(failed.id)
    assert stored.state == "FAILURE" and repr(stored.result) == "ValueError('나쁜 값: 13')"
    worker.wait_for_log(r"Errback 'practice09\.tasks\.on_error_raises' raised an exception", WAIT_SECONDS)
    assert "RuntimeError: errback도 실패했다" in worker.log
    # 실패한 작업은 여느 실패처럼 적혔고(bind=True 의 경우와 달리 예외가 밖으로 새지 않았다), 워커는 계속 일한다.
    # 이 줄은 errback 들이 끝난 뒤에 찍히므로, 기록을 본 뒤에도 조금 늦게 올 수 있다: 나타나기를 기다린다.
    raised = rf"Task practice09\.tasks\.fail\[{failed.id}\] raised unexpected: ValueError\('나쁜 값: 13'\)"
    worker.wait_for_log(raised, WAIT_SECONDS)
    assert add.delay(1, 1).get(timeout=WAIT_SECONDS) == 2


@pytest.mark.parametrize("position", ["first", "last"])
def test_a_chains_errback_is_on_every_step_and_the_steps_after_the_failure_never_run(worker, position):
    run = Journal.new_run()
    steps = [fail.s(1), add.s(1), add.s(2)] if position == "first" else [add.s(1, 2), add.s(3), fail.s()]
    result = chain(*steps).apply_async(link_error=on_error.s(run=run))
    assert isinstance(result.get(timeout=WAIT_SECONDS, propagate=False), ValueError)
    (seen,) = journal.wait_for(run, 1, timeout=WAIT_SECONDS)
    assert seen["task"] == "practice09.tasks.fail"
    nodes = [result]
    while nodes[0].parent is not None:
        nodes.insert(0, nodes[0].parent)
    later = nodes[(0 if position == "first" else 2) + 1 :]

    def a_later_step_ran_or_a_second_errback():
        return len(journal.read(run)) > 1 or any(f"[{node.id}] received" in worker.log for node in later)

    never_within(SETTLE_SECONDS, a_later_step_ran_or_a_second_errback, "실패한 단계 뒤의 단계나 두 번째 errback")
    assert [node.state for node in later] == ["FAILURE"] * len(later)


def test_a_chord_with_a_failing_header_never_runs_its_body(worker):
    result = chord([add.s(1, 1), fail.s(5), add.s(2, 2)])(merge.s())
    with pytest.raises(ValueError):
        result.get(timeout=WAIT_SECONDS)
    received = f"practice09.tasks.merge[{result.id}] received"
    never_within(SETTLE_SECONDS, lambda: received in worker.log, "chord body의 메시지")


def test_a_chord_whose_header_pool_process_is_killed_fails_with_worker_lost_error(worker):
    result = chord([add.s(1, 1), crash.s(2)])(merge.s())
    error = result.get(timeout=WAIT_SECONDS, propagate=False)
    assert type(error).__name__ == "ChordError"
    assert "WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL)" in str(error)
    assert [child.state for child in result.parent.results] == ["SUCCESS", "FAILURE"]
    assert f"practice09.tasks.merge[{result.id}] received" not in worker.log
    assert add.delay(2, 2).get(timeout=WAIT_SECONDS) == 4  # 풀이 새 프로세스를 띄워 계속 일한다


def test_reading_result_state_asks_the_backend_again_each_time(worker):
    result = progress.delay()
    seen = []

    def succeeded():
        state = result.state  # 같은 AsyncResult 객체를 다시 읽는다
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "SUCCESS"

    wait_until(succeeded, "progress 작업의 SUCCESS", WAIT_SECONDS)
    assert seen == ["PENDING", "PROGRESS", "SUCCESS"]
    assert result.info == {"done": 4, "total": 4}  # 끝난 뒤의 info는 반환값


def test_chunks_store_one_result_per_chunk_and_none_per_call(worker):
    client = app.backend.client  # 결과 백엔드(Redis)
    before = set(client.scan_iter("celery-task-meta-*"))
    result = add.chunks(zip(range(100), range(100), strict=True), 10).apply_async()
    result.get(timeout=WAIT_SECONDS)
    new = set(client.scan_iter("celery-task-meta-*")) - before
    assert {key.decode().removeprefix("celery-task-meta-") for key in new} == {part.id for part in result.results}
    assert len(new) == 10


def test_on_a_hard_time_limit_the_errback_runs_twice_in_the_workers_main_process(worker):
    run = Journal.new_run()
    result = overrun.apply_async((run,), link_error=on_error.s(run=run))
    assert type(result.get(timeout=WAIT_SECONDS, propagate=False)).__name__ == "TimeLimitExceeded"
    started, *errbacks = journal.wait_for(run, 2, what="on_error", timeout=WAIT_SECONDS)
    assert started.what == "overrun" and started.pid != worker.proc.pid
    assert [entry.pid for entry in errbacks] == [worker.proc.pid, worker.proc.pid]
    assert [entry["last_line"] for entry in errbacks] == [None, None]


def test_a_failing_chord_reads_differently_on_postgresql():
    # 같은 시나리오를 PostgreSQL 결과 백엔드로: ChordError의 글이 짧다(Dependency … raised가 없다).
    env = {"PRACTICE09_BACKEND": "postgres"}
    with running(Worker(LESSON, env=env)) as (worker,):
        run = run_call_tasks(LESSON, env=env, timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert "결과 백엔드: postgres" in run.output
    assert "chord(...).get(propagate=False) → ChordError(\"ValueError('나쁜 값: 5')\")" in run.output
    assert "Task celery.chord_unlock[" in worker.log  # PostgreSQL에서는 chord_unlock 이 header를 지켜본다
    assert re.search(r"\.> practice09_postgres\s+exchange=practice09_postgres", worker.log)  # 큐도 따로
    assert queue_counts("practice09_postgres") is not None


def _published(send) -> list[str]:
    """send(queue) 가 아무도 소비하지 않는 새 큐에 보낸 메시지들의 작업 이름. 보고 나서 큐를 지운다."""
    queue = f"practice09.count-{uuid.uuid4().hex[:6]}"  # 지운 큐의 이름을 다시 쓰면 Celery가 다시 선언하지 않는다
    send(queue)
    names = []
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            names.append(message.headers["task"])
        channel.queue_delete(queue)
    return names


def test_chunks_map_and_starmap_publish_few_messages():
    pairs = list(zip(range(100), range(100), strict=True))
    assert _published(lambda q: add.chunks(pairs, 10).apply_async(queue=q)) == ["celery.starmap"] * 10
    assert _published(lambda q: add.starmap(pairs).apply_async(queue=q)) == ["celery.starmap"]
    assert _published(lambda q: add.map([1, 2, 3]).apply_async(queue=q)) == ["celery.map"]


def test_allowing_errbacks_on_the_chord_header_calls_the_errback_twice(worker):
    # task_allow_error_cb_on_chord_header=True (보내는 쪽 설정): chord.on_error 의 errback이 header의 실패에도 붙는다.
    run = Journal.new_run()
    app.conf.task_allow_error_cb_on_chord_header = True
    try:
        workflow = chord([add.s(1, 1), fail.s(5), add.s(2, 2)], merge.s())
        workflow.on_error(on_error.s(run=run))
        result = workflow.apply_async()
    finally:
        app.conf.task_allow_error_cb_on_chord_header = False
    result.get(timeout=WAIT_SECONDS, propagate=False)
    errbacks = journal.wait_for(run, 2, timeout=WAIT_SECONDS)
    assert sorted(entry["task"] for entry in errbacks) == ["practice09.tasks.fail", "practice09.tasks.merge"]
