"""학습자의 첫 명령 그대로 `python -m playground all` 을 한 번 실행해 모든 실습의 시나리오를 끝까지 확인한다.

그 실행 한 번의 출력(course_run)을 실습별 테스트가 나누어 읽는다. 실습 하나의 블록에는 그 실습의 워커와 beat의
로그, call_tasks 의 출력이 들어 있다. 실습마다 확인하는 것은 같다. 통과했는지, "예상과 다름"(!!) 줄이 없는지,
README의 출력 예시가 실제 출력과 맞는지 본다. 실습의 README가 워커 로그에 대해 말하는 것은 WORKER_LOG_SAYS 에 있다.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from course import needs_of
from playground import processes
from playground.lessons import available_lessons
from tests import QUICK_START_ARGS
from tests.readme import assert_samples_match
from tests.test_playground import run_playground

# 실행기 한 번이 모든 실습을 실행한다(두 실습씩 함께). 이 모듈의 테스트는 그 실행 하나를 나누어 읽으므로 한 테스트
# 프로세스에 모은다. 첫 테스트의 제한 시간에는 그 실행 전체가 들어간다. 가장 긴 묶음이라 맨 먼저 시작한다(early).
pytestmark = [pytest.mark.xdist_group("course_run"), pytest.mark.early, pytest.mark.timeout(600)]
COURSE_RUN_TIMEOUT_SECONDS = 540
TAGGED = re.compile(r"^(?P<tag>\S+)\s*│ ?(?P<line>.*)$")
SUCCESS = "모든 호출이 README에 적힌 대로 동작했습니다."
# README의 표대로 Redis에서는 chord 콜백이 몇 밀리초 만에 시작한다. 상한은 chord_unlock 의 1초 주기보다
# 한참 짧으면 된다.
REDIS_CALLBACK_BOUND_MS = 250

# README가 워커나 beat의 로그에 나온다고 말하는 것 (정규식). 출력 예시로는 보이지 않는 주장들이다.
WORKER_LOG_SAYS = {
    "practice07": [
        r"Discarding revoked task: practice07\.tasks\.add\[",  # 만료된 작업은 워커가 버린다
        r"Scheduler: Sending due task tick-every-second \(practice07\.tasks\.tick\)",
    ],
    "practice09": [
        # link 콜백, 인자가 하나인 errback, bind=True 인 (self, task_id) errback은 새 메시지로 보내진다
        r"Task practice09\.tasks\.record\[",
        r"Task practice09\.tasks\.on_error_id\[",
        r"Task practice09\.tasks\.on_error_bound_id\[",
        r"on_error_bound\(\) missing 2 required positional arguments: 'exc' and 'traceback'",
        r"Errback 'practice09\.tasks\.on_error_raises' raised an exception",
        r"Process 'ForkPoolWorker-\d+' pid:\d+ exited with 'signal 9 \(SIGKILL\)'",
    ],
    "practice15": [
        # 실제 워커는 시간 제한을 넘긴 작업의 풀 프로세스를 끝낸다(eager에서는 끝까지 실행된다). SIGTERM 뒤 0.1초 안에
        # 끝나지 않은 프로세스만 SIGKILL을 받고 "exited with 'signal 9 (SIGKILL)'" 줄을 남긴다(practice01).
        r"Hard time limit \(1s\) exceeded for practice15\.tasks\.slow\[",
    ],
    "practice16": [
        # async def 작업: 워커는 코루틴 함수를 부르기만 하고 await하지 않는다. 돌아온 코루틴은 JSON으로 저장되지 못한다.
        r"RuntimeWarning: coroutine 'fetch_async' was never awaited",
        r"Terminating [0-9a-f-]{36} \(15\)",  # DELETE /reports/{id} 의 revoke(terminate=True)
    ],
    "practice10": [
        r"Tasks flagged as revoked: ",
        r"Discarding revoked task: practice10\.tasks\.work\[",
        r"Terminating [^\n]* \(15\)",  # terminate=True 는 SIGTERM을 보낸다
    ],
    "practice11": [
        r"주문이 없습니다: \d+\. 커밋하기 전에 보낸 작업인가요\?",
        r"Retry in 1s: LookupError\(",
        r"NOT_FOUND - no exchange 'practice11\.express'",  # publisher confirms를 켠 릴레이가 받은 거절
    ],
}
# 출력 예시 밖에서, call_tasks 의 출력에 나와야 하는 것 (정규식). 예시의 ‹…› 자리에 들어갈 값의 모양이다.
OUTPUT_SAYS = {
    "practice00": [r"AsyncResult\('[0-9a-f-]{36}'\)\.state → 'PENDING'"],
    "practice01": [
        r"작업이 남긴 흔적: \['시작 \(pid \d+\)', 'finally 시작'\]",
        r"unlimited\.delay\(\) 두 번 → 둘 다 SUCCESS, 실행한 pid \[[\d, ]+\], 하드 제한으로 죽은 pid \d+",
    ],
    "practice02": [r"multiply\(·, 3\)\s+id=[0-9a-f]{8}…  → 9\.0"],
    "practice03": [r"끝난 순서: \[\d, \d, \d, 1\]"],
    "practice04": [
        r"auto_retrying_with_jitter 의 간격: \[[0-2], [0-2], [0-2]\]초",
        r"다음 시도 eta=\S+ \(지금부터 약 1[78]\d초 뒤\)",
    ],
    "practice06": [r"send_task\('email\.send_welcom', \.\.\.\)\.get\(\) → [\d.]+초 뒤 NotRegistered"],
}
# README가 로그에 나오지 않는다고 말하는 것.
WORKER_LOG_NEVER_SAYS = {
    "practice05": [r"Deprecat"],
    "practice11": [r"주문이 없습니다: -1\."],  # 롤백한 트랜잭션의 ship(-1) 은 보내지 않았다
}


@dataclass
class LessonBlock:
    """실행기 출력에서 실습 하나의 블록: 머리줄과 결과 줄 사이."""

    text: str
    call_output: str  # call_tasks 가 찍은 줄들(접두사를 뗀 것)
    logs: dict[str, str]  # 워커나 beat의 이름 → 그 프로세스의 로그


def split_blocks(output: str) -> dict[str, LessonBlock]:
    blocks = {}
    for lesson, text in re.findall(
        r"^━━ (practice\d\d) ━+\n(.*?)(?=^━━ practice\d\d ━|^요약$|\Z)", output, re.M | re.S
    ):
        calls, logs = [], {}
        for line in text.splitlines():
            tagged = TAGGED.match(line)
            if not tagged:
                continue
            if tagged["tag"] == "call_tasks":
                calls.append(tagged["line"])
            else:
                logs[tagged["tag"]] = logs.get(tagged["tag"], "") + tagged["line"] + "\n"
        blocks[lesson] = LessonBlock(text, "\n".join(calls) + "\n", logs)
    return blocks


@pytest.fixture(scope="module")
def course_run():
    run = run_playground(*QUICK_START_ARGS, timeout=COURSE_RUN_TIMEOUT_SECONDS)  # 기본: 두 실습씩 함께
    return run, split_blocks(run.stdout)


def test_runner_all_shows_every_lesson_as_one_block_in_order_and_leaves_no_worker_behind(course_run):
    run, blocks = course_run
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.findall(r"^━━ (practice\d\d) ━", run.stdout, re.MULTILINE) == available_lessons()
    nodes_seen = set()
    for lesson, block in blocks.items():
        # 그 실습의 줄은 모두 자기 머리줄과 결과 줄 사이에 있다: 워커가 뜨고, 일하고, 멈추는 것까지.
        assert re.search(rf"^━━ {lesson}: 통과", block.text, re.MULTILINE), block.text
        tags = set(block.logs)
        # 워커를 스스로 띄우는 실습(starts_workers)의 워커 로그는 실행기를 거치지 않으므로 태그가 없을 수 있다.
        assert tags or needs_of(lesson).starts_workers, block.text
        assert not tags & nodes_seen  # 다른 실습의 워커 줄이 섞이지 않았다
        nodes_seen |= tags
        for tag, log in block.logs.items():
            if tag.startswith("beat-"):
                continue
            if tag.startswith("web-"):  # 웹 서버(uvicorn): 떠서 요청을 받고, SIGTERM에 스스로 멈췄다
                assert "Uvicorn running on http://127.0.0.1:" in log and "Finished server process" in log, tag
                continue
            assert re.search(rf"{re.escape(tag)}@\S+ ready\.", log), tag
            assert "worker: Warm shutdown" in log, tag
        # NEEDS에 beat를 적어 둔 실습에서만 그 블록 안에서 beat가 뜬다.
        beat_started = any("beat: Starting..." in log for log in block.logs.values())
        assert beat_started == (needs_of(lesson).beat is not None), lesson
    workers = {tag for tag in nodes_seen if not tag.startswith(("beat-", "web-"))}
    assert len(workers) == sum(len(needs_of(lesson).workers) for lesson in available_lessons())
    web_servers = {tag for tag in nodes_seen if tag.startswith("web-")}
    assert len(web_servers) == sum(needs_of(lesson).web is not None for lesson in available_lessons())
    assert "한 번에 2개씩" in run.stdout
    for tag in nodes_seen:
        assert processes.mentioning(f"--hostname={tag}@") == []
    # beat도 남지 않고, 실행기가 beat마다 만든 스케줄 파일 폴더도 지워졌다(배너의 ". db -> …" 가 그 파일).
    schedules = re.findall(r"^beat-\w+\s*│\s+\. db -> (\S+)", run.stdout, re.MULTILINE)
    assert len(schedules) == sum(needs_of(lesson).beat is not None for lesson in available_lessons())
    for schedule in schedules:
        assert processes.mentioning(schedule) == []
        assert not Path(schedule).parent.exists()


@pytest.mark.parametrize("lesson", available_lessons())
def test_call_tasks_runs_the_whole_scenario_as_the_readme_shows(course_run, lesson):
    _, blocks = course_run
    block = blocks[lesson]
    out = block.call_output
    assert re.search(rf"^━━ {lesson}: 통과", block.text, re.MULTILINE), block.text
    assert "!!" not in out, out
    assert out.rstrip().endswith(SUCCESS), out
    assert_samples_match(lesson, out)  # README의 출력 예시가 곧 이 출력이다
    for said in OUTPUT_SAYS.get(lesson, []):
        assert re.search(said, out), said
    log = "".join(block.logs.values())
    for said in WORKER_LOG_SAYS.get(lesson, []):
        assert re.search(said, log), said
    for never in WORKER_LOG_NEVER_SAYS.get(lesson, []):
        assert not re.search(never, log + out), never


def test_practice12_a_countdown_longer_than_the_visibility_timeout_is_received_again(course_run):
    # visibility_timeout 보다 긴 countdown 작업: Redis 브로커 워커의 로그에 같은 id의 received가 여러 번 나온다.
    _, blocks = course_run
    counts = []
    for log in blocks["practice12"].logs.values():
        received = re.findall(r"practice12\.redis_tasks\.note\[([0-9a-f-]+)\] received", log)
        counts += [received.count(task_id) for task_id in set(received)]
    assert max(counts) >= 2


def test_practice03_a_chord_callback_starts_within_milliseconds_on_redis(course_run):
    # Redis: 마지막 header 결과를 저장한 워커가 곧바로 콜백을 보낸다(몇 밀리초). 상한은 병렬 부하를 감안해 넉넉히 둔다.
    _, blocks = course_run
    delay_ms = float(re.search(r"콜백이 시작하기까지: ([\d.]+) ms", blocks["practice03"].call_output).group(1))
    assert delay_ms < REDIS_CALLBACK_BOUND_MS
