"""practice09 README: link, link_error(두 모양의 errback, 함정들), 실패하는 chain/chord, 진행률, chunks/map/starmap."""

from __future__ import annotations

import time
import uuid

import pytest

from playground.lessons import run_call_tasks, worker_on_empty_queue
from playground.workers import Worker, running
from practice09.tasks import add, fail, notes, on_error, overrun, record
from tests import CALL_TIMEOUT_SECONDS
from tests.readme import assert_samples_match

WAIT = 20


@pytest.fixture(scope="module")
def worker():
    with worker_on_empty_queue("practice09") as worker:
        yield worker


def test_call_tasks_runs_the_whole_scenario(worker):
    run = run_call_tasks("practice09", timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match("practice09", run.output)  # README 의 출력 예시가 곧 이 출력이다
    assert "!!" not in run.output
    # link 콜백과 인자 하나 errback 은 새 메시지, bind=True errback 은 TypeError 로 실패한다(README)
    assert "Task practice09.tasks.record[" in worker.log
    assert "Task practice09.tasks.on_error_id[" in worker.log
    assert "on_error_bound() missing 2 required positional arguments: 'exc' and 'traceback'" in worker.log


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


def test_on_a_hard_time_limit_the_errback_runs_twice_in_the_workers_main_process(worker):
    run = str(uuid.uuid4())
    result = overrun.apply_async((run,), link_error=on_error.s(run=run))
    assert type(result.get(timeout=WAIT, propagate=False)).__name__ == "TimeLimitExceeded"
    errbacks = _wait_for(run, "on_error", 2)
    assert [n["pid"] for n in errbacks] == [worker.proc.pid, worker.proc.pid]
    assert [n["last_line"] for n in errbacks] == [None, None]


def test_a_failing_chord_reads_differently_on_postgresql():
    # 같은 시나리오를 PostgreSQL 결과 백엔드로: ChordError 의 글이 짧다(Dependency … raised 가 없다).
    env = {"PRACTICE09_BACKEND": "postgres"}
    with running(Worker("practice09", env=env)):
        run = run_call_tasks("practice09", env=env, timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert "결과 백엔드: postgres" in run.output
    assert "chord(...).get(propagate=False) → ChordError(\"ValueError('나쁜 값: 5')\")" in run.output


def _published(send) -> list[str]:
    """send(queue) 가 아무도 소비하지 않는 새 큐에 보낸 메시지들의 작업 이름. 보고 나서 큐를 지운다."""
    from practice09.tasks import app

    queue = f"practice09.count-{uuid.uuid4().hex[:6]}"  # 지운 큐의 이름을 다시 쓰면 Celery 가 다시 선언하지 않는다
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
    # task_allow_error_cb_on_chord_header=True (보내는 쪽 설정): chord.on_error 의 errback 이 header 의 실패에도 붙는다.
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
