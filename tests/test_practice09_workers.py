"""practice09 README: chord의 header 작업을 잃으면 — 워커째 kill -9 (시작 시 ack 대 acks_late).

이 모듈의 테스트는 워커를 스스로 띄우고 죽인다. test_practice09 의 모듈 워커가 같은 큐를 소비하지 않도록 모듈을 나눴다.
"""

from __future__ import annotations

import pytest
from celery import chord
from celery.exceptions import TimeoutError as CeleryTimeoutError

from course import never_within, release_pending_results, wait_until
from playground.broker import queue_counts
from playground.lessons import lesson_workers
from playground.workers import running
from practice09.tasks import SLOW_PART_SECONDS, add, app, merge, slow_add, slow_add_late
from tests import WAIT_SECONDS

LESSON = "practice09"
NEVER_SECONDS = SLOW_PART_SECONDS + 2  # 다시 띄운 워커가 header를 끝낼 수 있었을 시간보다 넉넉히


@pytest.fixture(autouse=True)
def _release_pending_results():
    # 오지 않을 결과를 기다리는 구독을 푼다(call_tasks 에서 Scenario.run 이 하는 것과 같다)
    yield
    release_pending_results(app)


def _chord_parts_counted(group_id: str) -> int:
    """Redis 백엔드가 chord 집계 키(.j)에 적어 둔 header 결과의 수."""
    backend = app.backend
    key = backend.get_key_for_group(group_id, ".j")
    return backend.client.zcard(key) if backend._chord_zset else backend.client.llen(key)


def _running(worker, task_id: str) -> bool:
    """worker의 풀 프로세스가 task_id 를 실행하고 있는가(inspect active)."""
    active = app.control.inspect(destination=[worker.node], timeout=1).active() or {}
    return any(task["id"] == task_id for task in active.get(worker.node, []))


@pytest.mark.parametrize("part", [slow_add, slow_add_late], ids=["ack_at_start", "acks_late"])
def test_a_chord_whose_header_task_dies_with_the_whole_worker(part, empty_queue):
    (first,) = lesson_workers(LESSON)
    with running(first):
        result = chord([add.s(1, 1), part.s(2, 2)])(merge.s())
        first.wait_for_log(rf"{part.name}\[\S+\] received", WAIT_SECONDS)
        header = result.parent.results
        # add는 끝났고 part는 실행 중일 때 죽인다. 부하가 크면 "received" 와 실행 시작 사이, add의 결과 기록과 chord
        # 집계(Redis 백엔드의 on_chord_part_return) 사이가 벌어진다. 그래서 두 가지를 다 보고 죽인다.
        wait_until(lambda: _chord_parts_counted(result.parent.id) == 1, "chord 집계에 add가 들어감", WAIT_SECONDS)
        wait_until(lambda: _running(first, header[1].id), "header의 느린 작업이 실행 중", WAIT_SECONDS)
        first.kill()
    assert [child.state for child in header] == ["SUCCESS", "PENDING"]  # 실패를 적을 프로세스가 없었다
    # 시작 시 ack면 메시지는 브로커에도 없다. acks_late 면 연결이 끊기며 큐로 돌아온다.
    waiting = 0 if part is slow_add else 1
    wait_until(lambda: queue_counts(empty_queue)[0] == waiting, f"큐에 남은 메시지 {waiting}개", WAIT_SECONDS)
    (second,) = lesson_workers(LESSON)
    with running(second):
        if part is slow_add:
            # 다시 띄운 워커도 받을 것이 없다. body는 영영 실행되지 않는다.
            def something_ran():
                return (
                    [child.state for child in header] != ["SUCCESS", "PENDING"]
                    or app.AsyncResult(result.id).state != "PENDING"
                    or f"[{header[1].id}] received" in second.log
                    or f"practice09.tasks.merge[{result.id}] received" in second.log
                )

            never_within(NEVER_SECONDS, something_ran, "다시 띄운 워커가 잃은 header나 body를 실행함")
        else:
            # acks_late: 메시지가 큐로 돌아와 다시 띄운 워커가 header를 마저 돌리고 chord가 끝난다.
            try:
                merged = result.get(timeout=WAIT_SECONDS)
            except CeleryTimeoutError:
                # 부하가 큰 전체 실행에서 한 번 이렇게 끝났다. 다음에는 무엇이 멈췄는지 남긴다.
                states = [child.state for child in header], app.AsyncResult(result.id).state
                log = second.log_tail(40)
                pytest.fail(f"the chord did not finish: header, body = {states}\n--- second worker ---\n{log}")
            assert merged == 6
            assert f"{part.name}[{header[1].id}] received" in second.log
