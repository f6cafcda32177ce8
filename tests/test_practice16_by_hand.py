"""practice16 README: 실행 절의 uvicorn 명령과 '직접 해 보기'의 명령들을 적힌 그대로 실행한다.

학습자처럼 기본 포트(8016)에 README의 워커와 웹 서버만 띄운다. 그동안 이 실습의 다른 워커는 같은 큐를 소비하지
않는다(tests/test_practice16.py 의 모듈 워커는 다른 모듈의 것이다). 8016을 쓰는 테스트는 이 모듈에만 있고, 한 테스트
프로세스에서 차례로 실행된다.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from course import needs_of, wait_until
from playground import PROJECT_ROOT
from playground.readme import section
from playground.workers import WebServer, running
from practice16 import web as web_app
from tests import WAIT_SECONDS
from tests.readme import ReadmeWorker, block_commands, code_blocks, lesson_readmes, parse, readme, run_commands

LESSON = "practice16"
pytestmark = [pytest.mark.xdist_group("practice16_by_hand"), pytest.mark.early]
WEB = needs_of(LESSON).web


class ReadmeWebServer(WebServer):
    """README의 `uvicorn …` 명령 하나를 글자 그대로 띄운다. 준비를 기다리고 멈추는 법은 WebServer 그대로다."""

    def __init__(self, command: str) -> None:
        super().__init__(LESSON, WEB, port=WEB.port)
        self.command = parse(command)

    @property
    def argv(self):
        return list(self.command.argv)


def test_the_readme_uvicorn_command_serves_the_app_at_the_address_call_tasks_uses_by_default(monkeypatch):
    (command,) = [c for c in run_commands(readme(lesson_readmes(LESSON)[0])) if c.startswith("uvicorn ")]
    assert command == WEB.command(LESSON) == "uvicorn practice16.web:app --port 8016"
    monkeypatch.delenv("PRACTICE16_URL")
    default = WEB.url(LESSON)
    assert default == "http://127.0.0.1:8016"
    with running(ReadmeWebServer(command)):
        assert httpx.get(f"{default}/health").json() == {"ok": True}


# --- README의 직접 해 보기 --------------------------------------------------------------------------------------


def _by_hand_blocks() -> list[list[str]]:
    """README(한국어판) '직접 해 보기' 절의 bash 블록마다 명령들. 영어판의 명령이 같은지는 test_readme.py 가 본다."""
    return [block_commands(block) for block in code_blocks(section(readme(lesson_readmes(LESSON)[0]), "직접 해 보기"))]


def _shell(command: str, exported: dict[str, str]) -> str:
    """README의 명령 한 줄을 bash로 적힌 그대로 실행하고 표준 출력을 돌려준다.

    앞서 `export NAME=…` 로 정한 변수들을 환경에 넣어 준다. 셸 하나에서 차례로 실행한 것과 같다. `python` 은 이
    테스트의 파이썬이다(학습자의 가상 환경).
    """
    assigned = re.match(r"export (\w+)=", command)
    script = f'{command}\nprintf %s "${assigned[1]}"' if assigned else command
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "PATH": path, **exported}, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=WAIT_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    if assigned:
        assert re.fullmatch(r"[0-9a-f-]{36}", done.stdout), (command, done.stdout, done.stderr)
        exported[assigned[1]] = done.stdout
    return done.stdout


def _events_in(output: str) -> list[tuple[str, dict]]:
    return [(name, json.loads(data)) for name, data in re.findall(r"^event: (\w+)\r?\ndata: (.*?)\r?$", output, re.M)]


def test_the_readme_by_hand_commands_work_as_written():
    start, post, follow, stream, twice, cancel = _by_hand_blocks()
    assert start == run_commands(readme(lesson_readmes(LESSON)[0]))[:2]  # 터미널 1과 2: 실행 절의 명령 그대로
    worker_command, web_command = start
    (key,) = set(re.findall(r"Idempotency-Key: ([\w-]+)", " ".join(twice)))
    web_app.store.delete(web_app.idempotency_key(key))  # 이 테스트 프로세스의 Redis에서 앞선 실행이 남긴 키
    exported: dict[str, str] = {}
    with running(ReadmeWorker(LESSON, worker_command), ReadmeWebServer(web_command)) as (worker, _):
        # 1. POST: 202, Location, 본문의 id
        (post_command,) = post
        answer = _shell(post_command, exported)
        assert answer.startswith("HTTP/1.1 202 Accepted"), answer
        location = re.search(r"^location: /reports/([0-9a-f-]{36})\r?$", answer, re.M)
        assert location and answer.rstrip().endswith(f'{{"id":"{location[1]}"}}'), answer

        # 2. 새 보고서의 id를 변수에 넣고, 상태를 SUCCESS가 될 때까지 묻는다
        export, status = follow
        _shell(export, exported)
        seen = []

        def finished():
            seen.append(_shell(status, exported))
            return json.loads(seen[-1])["state"] == "SUCCESS" and seen[-1]

        done = wait_until(finished, "README의 보고서가 끝나기")
        states = [json.loads(answer)["state"] for answer in seen]
        assert "PROGRESS" in states and set(states) <= {"PENDING", "STARTED", "PROGRESS", "SUCCESS"}, states
        assert any('"progress":{"done":' in answer and '"total":20}' in answer for answer in seen), seen
        assert '"result":{"pages":20,' in done, done

        # 3. SSE: progress 이벤트들 다음에 done. 끝난 보고서에 한 번 더 열면 done 하나뿐이다
        export, events = stream
        _shell(export, exported)
        received = _events_in(_shell(events, exported))
        names = [name for name, _ in received]
        assert names[-1] == "done" and set(names[:-1]) == {"progress"} and len(names) > 2, names
        assert received[-1][1]["state"] == "SUCCESS"
        assert [name for name, _ in _events_in(_shell(events, exported))] == ["done"]

        # 4. 같은 Idempotency-Key 두 번: 같은 id, 메시지 하나
        assert twice[0] == twice[1]
        first, again = (json.loads(_shell(command, exported)) for command in twice)
        assert first == again, (first, again)
        wait_until(lambda: _status_by_hand(status, first["id"], exported) == "SUCCESS", "같은 키의 보고서가 끝나기")
        logs = worker.log
        assert logs.count(f"make_report[{first['id']}] received") == 1, logs

        # 5. 실행 중인 보고서를 DELETE: REVOKED(terminated), 워커 로그의 Terminating … (15)
        export, delete, status = cancel
        _shell(export, exported)
        wait_until(lambda: json.loads(_shell(status, exported))["state"] == "PROGRESS", "README의 보고서가 시작하기")
        assert json.loads(_shell(delete, exported)) == {"id": exported["REPORT"], "revoked": True}
        revoked = wait_until(lambda: (s := json.loads(_shell(status, exported)))["state"] == "REVOKED" and s, "취소")
        assert revoked["error"] == {"type": "TaskRevokedError", "message": "terminated"}
        pattern = re.compile(rf"Terminating {exported['REPORT']} \(15\)")
        wait_until(lambda: pattern.search(worker.log), "Terminating … (15)")


def _status_by_hand(status_command: str, report_id: str, exported: dict[str, str]) -> str:
    """README의 상태 묻기 명령을 다른 id(REPORT)로 실행한 답의 state."""
    return json.loads(_shell(status_command, {**exported, "REPORT": report_id}))["state"]
