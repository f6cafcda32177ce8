"""practice09 README: link, link_error(두 모양의 errback, 함정들), 실패하는 chain/chord, 진행률, chunks/map/starmap."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import redis
from celery import chain, chord

import global_config
from playground.broker import queue_counts
from playground.lessons import run_call_tasks, worker_on_empty_queue
from playground.workers import Worker, running
from practice09.tasks import (
    add,
    app,
    crash,
    fail,
    merge,
    notes,
    on_error,
    on_error_bound,
    on_error_bound_id,
    on_error_id,
    on_error_raises,
    overrun,
    progress,
    record,
)
from tests import CALL_TIMEOUT_SECONDS

WAIT = 20
SETTLE_SECONDS = 1  # "오지 않는다"를 보려고 더 기다려 보는 시간


@pytest.fixture(scope="module")
def worker():
    with worker_on_empty_queue("practice09") as worker:
        yield worker


def _wait_for(run, what, count):
    deadline = time.monotonic() + WAIT
    while len(found := [n for n in notes(run) if n["what"] == what]) < count:
        assert time.monotonic() < deadline, notes(run)
        time.sleep(0.05)
    return found


def test_the_link_callback_gets_the_return_value_as_its_first_argument(worker):
    run = str(uuid.uuid4())
    assert add.apply_async((2, 3), link=record.s(run=run)).get(timeout=WAIT) == 5
    assert [n["value"] for n in _wait_for(run, "record", 1)] == [5]


def test_a_three_parameter_errback_gets_the_request_and_runs_in_the_failing_pool_process(worker):
    run = str(uuid.uuid4())
    failed = fail.apply_async((7,), {"run": run}, link_error=on_error.s(run=run))
    assert isinstance(failed.get(timeout=WAIT, propagate=False), ValueError)
    (seen,) = _wait_for(run, "on_error", 1)
    (ran,) = _wait_for(run, "fail", 1)
    assert (seen["id"], seen["task"], seen["args"]) == (failed.id, "practice09.tasks.fail", [7])
    assert seen["hostname"] == worker.node
    assert seen["pid"] == ran["pid"] != worker.proc.pid
    assert not re.search(r"practice09\.tasks\.on_error\[\S+\] received", worker.log)  # 메시지로 가지 않았다


def test_a_bound_errback_taking_self_and_task_id_gets_its_own_message_whose_parent_is_the_failed_task(worker):
    run = str(uuid.uuid4())
    failed = fail.apply_async((9,), {"run": run}, link_error=on_error_bound_id.s(run=run))
    failed.get(timeout=WAIT, propagate=False)
    (seen,) = _wait_for(run, "on_error_bound_id", 1)
    assert seen["id"] == seen["parent_id"] == failed.id  # 실패한 id를 받은, 자기 메시지의 작업


def test_celery_checks_an_errbacks_arguments_before_sending_it():
    # 보내기 전의 인자 검사(typing, 기본값 True): (self, request, exc, traceback) 에 (task_id,) 만 주면
    # 보내지 않고 TypeError.
    assert on_error_bound.typing is True
    with pytest.raises(TypeError, match=r"on_error_bound\(\) missing 2 required positional arguments: 'exc' and"):
        on_error_bound.apply_async(("some-task-id",), {"run": "r"})


def test_a_bound_errback_with_request_exc_traceback_is_never_sent_and_overwrites_the_failed_result(worker):
    run = str(uuid.uuid4())
    errbacks = [on_error_bound_id.s(run=run), on_error_bound.s(run=run), on_error_id.s(run=run)]
    failed = fail.apply_async((12,), {"run": run}, link_error=errbacks)
    assert isinstance(failed.get(timeout=WAIT, propagate=False), ValueError)  # 처음 적힌 결과
    before = _wait_for(run, "on_error_bound_id", 3)  # 앞에 둔 errback은 세 번 보내진다
    time.sleep(SETTLE_SECONDS)
    assert len([n for n in notes(run) if n["what"] == "on_error_bound_id"]) == len(before) == 3
    assert [n for n in notes(run) if n["what"] in ("on_error_bound", "on_error_id")] == []  # 뒤에 둔 것은 가지 않는다
    assert not re.search(r"practice09\.tasks\.on_error_bound\[\S+\] received", worker.log)
    overwritten = app.AsyncResult(failed.id)
    assert overwritten.state == "FAILURE"
    assert isinstance(overwritten.result, TypeError)
    assert "missing 2 required positional arguments: 'exc' and 'traceback'" in str(overwritten.result)
    assert "RuntimeWarning: Exception raised outside body: TypeError(" in worker.log


def test_an_exception_inside_an_errback_is_only_logged(worker):
    run = str(uuid.uuid4())
    failed = fail.apply_async((13,), {"run": run}, link_error=[on_error_raises.s(run=run), on_error.s(run=run)])
    failed.get(timeout=WAIT, propagate=False)
    _wait_for(run, "on_error", 1)
    assert [n["what"] for n in notes(run)] == ["fail", "on_error_raises", "on_error"]  # 뒤의 errback도 불렸다
    stored = app.AsyncResult(failed.id)
    assert stored.state == "FAILURE" and repr(stored.result) == "ValueError('나쁜 값: 13')"
    worker.wait_for_log(r"Errback 'practice09\.tasks\.on_error_raises' raised an exception", WAIT)
    assert "RuntimeError: errback도 실패했다" in worker.log
    # 실패한 작업은 여느 실패처럼 적혔고(bind=True 의 경우와 달리 예외가 밖으로 새지 않았다), 워커는 계속 일한다.
    # 이 줄은 errback 들이 끝난 뒤에 찍히므로, 기록을 본 뒤에도 조금 늦게 올 수 있다: 나타나기를 기다린다.
    raised = rf"Task practice09\.tasks\.fail\[{failed.id}\] raised unexpected: ValueError\('나쁜 값: 13'\)"
    worker.wait_for_log(raised, WAIT)
    assert add.delay(1, 1).get(timeout=WAIT) == 2


@pytest.mark.parametrize("position", ["first", "last"])
def test_a_chains_errback_is_on_every_step_and_the_steps_after_the_failure_never_run(worker, position):
    run = str(uuid.uuid4())
    steps = [fail.s(1), add.s(1), add.s(2)] if position == "first" else [add.s(1, 2), add.s(3), fail.s()]
    result = chain(*steps).apply_async(link_error=on_error.s(run=run))
    assert isinstance(result.get(timeout=WAIT, propagate=False), ValueError)
    (seen,) = _wait_for(run, "on_error", 1)
    assert seen["task"] == "practice09.tasks.fail"
    nodes = []
    node = result
    while node is not None:
        nodes.insert(0, node)
        node = node.parent
    failed_at = 0 if position == "first" else 2
    time.sleep(SETTLE_SECONDS)
    for later in nodes[failed_at + 1 :]:
        assert later.state == "FAILURE"
        assert f"[{later.id}] received" not in worker.log  # 실행되지 않았다
    assert len([n for n in notes(run) if n["what"] == "on_error"]) == 1


def test_a_chord_with_a_failing_header_never_runs_its_body(worker):
    result = chord([add.s(1, 1), fail.s(5), add.s(2, 2)])(merge.s())
    with pytest.raises(ValueError):
        result.get(timeout=WAIT)
    time.sleep(SETTLE_SECONDS)
    assert f"practice09.tasks.merge[{result.id}] received" not in worker.log


def test_a_chord_whose_header_pool_process_is_killed_fails_with_worker_lost_error(worker):
    result = chord([add.s(1, 1), crash.s(2)])(merge.s())
    error = result.get(timeout=WAIT, propagate=False)
    assert type(error).__name__ == "ChordError"
    assert "WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL)" in str(error)
    assert [child.state for child in result.parent.results] == ["SUCCESS", "FAILURE"]
    assert f"practice09.tasks.merge[{result.id}] received" not in worker.log
    assert add.delay(2, 2).get(timeout=WAIT) == 4  # 풀이 새 프로세스를 띄워 계속 일한다


def test_reading_result_state_asks_the_backend_again_each_time(worker):
    result = progress.delay()
    seen = []
    deadline = time.monotonic() + WAIT
    while not seen or seen[-1] != "SUCCESS":
        assert time.monotonic() < deadline, seen
        state = result.state  # 같은 AsyncResult 객체를 다시 읽는다
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.05)
    assert seen == ["PENDING", "PROGRESS", "SUCCESS"]
    assert result.info == {"done": 4, "total": 4}  # 끝난 뒤의 info는 반환값


def test_chunks_store_one_result_per_chunk_and_none_per_call(worker):
    client = redis.Redis.from_url(global_config.REDIS_URL)
    before = set(client.scan_iter("celery-task-meta-*"))
    result = add.chunks(zip(range(100), range(100), strict=True), 10).apply_async()
    result.get(timeout=WAIT)
    new = set(client.scan_iter("celery-task-meta-*")) - before
    assert {key.decode().removeprefix("celery-task-meta-") for key in new} == {part.id for part in result.results}
    assert len(new) == 10


def test_on_a_hard_time_limit_the_errback_runs_twice_in_the_workers_main_process(worker):
    run = str(uuid.uuid4())
    result = overrun.apply_async((run,), link_error=on_error.s(run=run))
    assert type(result.get(timeout=WAIT, propagate=False)).__name__ == "TimeLimitExceeded"
    errbacks = _wait_for(run, "on_error", 2)
    assert [n["pid"] for n in errbacks] == [worker.proc.pid, worker.proc.pid]
    assert [n["last_line"] for n in errbacks] == [None, None]


def test_a_failing_chord_reads_differently_on_postgresql():
    # 같은 시나리오를 PostgreSQL 결과 백엔드로: ChordError의 글이 짧다(Dependency … raised가 없다).
    env = {"PRACTICE09_BACKEND": "postgres"}
    with running(Worker("practice09", env=env)) as (worker,):
        run = run_call_tasks("practice09", env=env, timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert "결과 백엔드: postgres" in run.output
    assert "chord(...).get(propagate=False) → ChordError(\"ValueError('나쁜 값: 5')\")" in run.output
    assert "Task celery.chord_unlock[" in worker.log  # PostgreSQL에서는 chord_unlock 이 header를 지켜본다
    assert re.search(r"\.> practice09_postgres\s+exchange=practice09_postgres", worker.log)  # 큐도 따로
    assert queue_counts("practice09_postgres") is not None


def _published(send) -> list[str]:
    """send(queue) 가 아무도 소비하지 않는 새 큐에 보낸 메시지들의 작업 이름. 보고 나서 큐를 지운다."""
    from practice09.tasks import app

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
    from celery import chord

    from practice09.tasks import app, merge

    run = str(uuid.uuid4())
    app.conf.task_allow_error_cb_on_chord_header = True
    try:
        workflow = chord([add.s(1, 1), fail.s(5), add.s(2, 2)], merge.s())
        workflow.on_error(on_error.s(run=run))
        result = workflow.apply_async()
    finally:
        app.conf.task_allow_error_cb_on_chord_header = False
    result.get(timeout=WAIT, propagate=False)
    errbacks = _wait_for(run, "on_error", 2)
    assert sorted(n["task"] for n in errbacks) == ["practice09.tasks.fail", "practice09.tasks.merge"]
