"""`celery …` 명령 여럿을 파이썬 프로세스 하나 안에서 `--help` 를 붙여 돌리고, 종료 코드와 출력을 JSON으로 찍는다.

명령마다 `celery` 프로세스를 띄우면 Celery를 불러오는 데만 명령 하나에 1초 가까이 든다. click으로 만든 celery CLI를
이 프로세스 안에서 부르면 판정(모르는 하위 명령이나 옵션 → 종료 코드 2)은 같고 Celery는 한 번만 불러온다.

    python -m tests.celery_cli_check < commands.json   # [{"env": {...}, "args": ["-A", "practice00.tasks", ...]}, ...]
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import redirect_stderr, redirect_stdout


def check(args: list[str], env: dict[str, str]) -> dict[str, object]:
    from celery.bin.celery import celery

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                celery.main(args=[*args, "--help"], prog_name="celery", standalone_mode=True)
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return {"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main() -> None:
    requests = json.load(sys.stdin)
    print(json.dumps([check(request["args"], request["env"]) for request in requests]))


if __name__ == "__main__":
    main()
