"""practice04 README '실행' 절: README의 워커 명령을 글자 그대로 띄우고 call_tasks 를 돌린다.

글자 그대로라서 풀 프로세스는 CPU 수만큼이고, mingle과 gossip이 켜져 있고, 노드 이름은 celery@호스트다(다른 테스트의
워커는 풀 프로세스 둘, 새 노드 이름, mingle과 gossip 없이 뜬다). 다른 테스트의 워커와 큐를 나눠 갖지 않도록 모듈을
따로 둔다: 모듈 범위의 워커는 그 모듈이 끝날 때 멈춘다.
"""

from __future__ import annotations

from playground.lessons import purge, run_call_tasks
from playground.workers import running
from tests import CALL_TIMEOUT_SECONDS
from tests.readme import assert_samples_match, readme_workers

LESSON = "practice04"


def test_call_tasks_against_the_worker_started_as_the_readme_says():
    purge(LESSON)
    (worker,) = readme_workers(LESSON)
    assert worker.argv[-4:] == ["-A", "practice04.tasks", "worker", "--loglevel=info"]
    with running(worker):
        assert worker.node.startswith("celery@")
        run = run_call_tasks(LESSON, timeout=CALL_TIMEOUT_SECONDS)
    assert run.returncode == 0, run.output
    assert_samples_match(LESSON, run.output)
    assert "!!" not in run.output
