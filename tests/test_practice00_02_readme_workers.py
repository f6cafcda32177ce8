"""practice00, practice01, practice02 README의 워커 명령을 적힌 그대로 띄워 call_tasks 를 돌린다.

다른 테스트의 워커는 playground가 띄운다(풀 프로세스 둘, 노드 이름, mingle과 gossip 끔). 학습자는 README의 명령을
그대로 친다. 풀은 기본값(prefork)이고, 풀 프로세스는 CPU 수만큼이고, 노드 이름은 celery@호스트다. 그 명령으로도
README가 보여 주는 출력이 나오는지 본다.
"""

from __future__ import annotations

import os
import re

import pytest

from course import needs_of
from playground.lessons import purge, run_call_tasks
from playground.workers import Worker, running
from tests.readme import ReadmeWorker, assert_samples_match, command_starting, commands, lesson_readmes, readme

LESSONS = ["practice00", "practice01", "practice02"]
CALL_TASKS_SECONDS = 90
SOLO_COMMAND = "celery -A practice01.tasks worker --loglevel=info --pool=solo"


def banner_pool(worker: Worker) -> tuple[int, str]:
    """워커가 시작할 때 찍는 `concurrency: 2 (prefork)` 줄의 (프로세스 수, 풀)."""
    match = re.search(r"concurrency: (\d+) \((\w+)\)", worker.log)
    assert match, worker.log_tail()
    return int(match.group(1)), match.group(2)


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_readme_worker_command_as_written_gives_the_readme_output(lesson):
    command = needs_of(lesson).commands(lesson)[0]
    assert command == f"celery -A {lesson}.tasks worker --loglevel=info"
    for own in lesson_readmes(lesson):
        assert command in commands(readme(own)), own
    purge(lesson)
    with running(ReadmeWorker(lesson, command)) as (worker,):
        run = run_call_tasks(lesson, timeout=CALL_TASKS_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match(lesson, run.output)
    assert run.output.rstrip().endswith("모든 호출이 README에 적힌 대로 동작했습니다.")
    # practice01 README: prefork가 워커의 기본 풀이다(--pool 을 주지 않았다). 풀 프로세스는 CPU 수만큼이다.
    assert banner_pool(worker) == (os.cpu_count(), "prefork")


@pytest.mark.early
def test_the_readme_solo_command_ignores_the_hard_limit_and_call_tasks_says_so():
    command = command_starting(readme("practice01/README.md"), SOLO_COMMAND)
    assert command == SOLO_COMMAND
    purge("practice01")
    with running(ReadmeWorker("practice01", command)) as (worker,):
        run = run_call_tasks("practice01", timeout=CALL_TASKS_SECONDS)
    assert banner_pool(worker)[1] == "solo"
    assert run.returncode == 1
    assert "hard_limited.delay(run_id) → state=SUCCESS" in run.output
    assert "!! 예상과 다름: 하드 제한의 state = 'SUCCESS' (예상: 'FAILURE')" in run.output
