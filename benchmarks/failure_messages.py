"""무엇이 빠졌을 때 call_tasks 가 안내를 찍기까지 몇 초 걸리나: 워커 없음, 브로커 꺼짐, 결과 백엔드 꺼짐.

    python -m benchmarks.failure_messages [--lessons practice00 …] [--modes no-worker broker-down backend-down]
                                          [--json PATH]

실습마다 `python -m <lesson>.call_tasks` 를 학습자처럼 하위 프로세스로 실행하고, 프로세스를 띄운 순간부터
안내의 첫 줄이 나올 때까지, 그리고 프로세스가 끝날 때까지를 잰다. 서비스가 꺼진 것은 그 서비스의 주소를
아무것도 듣지 않는 포트로 바꿔 흉내 낸다. 워커 없음 모드가 보낸 작업은 끝난 뒤 큐에서 지운다.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import EXIT_SERVICES_DOWN, services_down
from playground.lessons import (
    available_lessons,
    broker_service,
    purge,
    result_backend_service,
    run_call_tasks,
    service_down_env,
)
from playground.services import Service

CALL_TASKS_TIMEOUT_SECONDS = 60


def _down(pick: Callable[[str], Service]) -> Callable[[str], tuple[dict[str, str], str]]:
    def mode(lesson: str) -> tuple[dict[str, str], str]:
        service = pick(lesson)
        return service_down_env(service), rf"^{service.name}에 연결할 수 없습니다"

    return mode


# 모드 이름 → (실습 → (환경 변수, 안내의 첫 줄을 찾는 정규식))
MODES: dict[str, Callable[[str], tuple[dict[str, str], str]]] = {
    "no-worker": lambda lesson: (
        {},
        r"(?:워커|웹 서버)가 실행 중인가요\?$",
    ),  # get() 의 제한 시간이든 wait_until 이든 같은 안내
    "broker-down": _down(broker_service),
    "backend-down": _down(result_backend_service),
}


def measure(lesson: str, mode: str) -> dict[str, float | int | None]:
    env, message = MODES[mode](lesson)
    pattern = re.compile(message)
    seen: list[float] = []
    started = time.monotonic()

    def watch(line: str) -> None:
        if not seen and pattern.search(line):
            seen.append(time.monotonic() - started)

    try:
        run = run_call_tasks(lesson, env=env, timeout=CALL_TASKS_TIMEOUT_SECONDS, on_line=watch)
    finally:
        if mode == "no-worker":
            purge(lesson)  # 보낸 작업이 다음에 뜨는 워커에게 가지 않게
    return {"message": seen[0] if seen else None, "exit": run.seconds, "code": run.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failure_messages", description=__doc__)
    parser.add_argument("--lessons", nargs="+", default=available_lessons(), help="잴 실습들 (기본: 전부)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES), help="잴 상황들 (기본: 전부)")
    parser.add_argument("--json", metavar="PATH", help="결과를 JSON으로도 쓴다")
    args = parser.parse_args(argv)
    if services_down():
        return EXIT_SERVICES_DOWN

    rows = {lesson: {mode: measure(lesson, mode) for mode in args.modes} for lesson in args.lessons}

    print("seconds from starting call_tasks to its first line of advice / to its exit (exit code)")
    print(f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
          f"python {platform.python_version()}")  # fmt: skip
    print(f"{'':<11}" + "".join(f"  {mode:>24}" for mode in args.modes))
    for lesson, results in rows.items():
        cells = []
        for mode in args.modes:
            r = results[mode]
            message = f"{r['message']:5.1f}" if r["message"] is not None else "  —  "
            cells.append(f"  {message} / {r['exit']:5.1f} ({r['code']})".rjust(26))
        print(f"{lesson:<11}" + "".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    every_one_advised = all(r["message"] is not None and r["code"] != 0 for rs in rows.values() for r in rs.values())
    return 0 if every_one_advised else 1


if __name__ == "__main__":
    sys.exit(main())
