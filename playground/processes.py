"""리눅스의 /proc 을 읽어 프로세스를 살핀다. 살아 있는지, 어느 프로세스 그룹인지, 누구의 자손인지, 명령 줄에 무엇이
있는지 본다.

PID로 워커를 멈추는 playground/workers.py 와, 띄운 프로세스가 하나도 남지 않았는지 보는 테스트가 이 모듈을 쓴다.
좀비(끝났지만 부모가 아직 거두지 않은 프로세스)는 살아 있지 않은 것으로 센다.
"""

from __future__ import annotations

import os
from collections.abc import Iterator


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat 에서 괄호 안의 명령 이름 뒤에 오는 칸들(state, ppid, pgrp, …). 프로세스가 없으면 None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def live_pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry)):
            yield int(entry)


def in_group(pgid: int) -> set[int]:
    """프로세스 그룹 pgid에 속한 살아 있는 PID들."""
    return {pid for pid in live_pids() if (fields := _stat(pid)) is not None and int(fields[2]) == pgid}


def descendants(pid: int) -> set[int]:
    """pid의 살아 있는 자손들. 새 세션으로 띄운 워커도 부모와 자식 관계는 그대로 남는다."""
    children: dict[int, list[int]] = {}
    for child in live_pids():
        if (fields := _stat(child)) is not None:
            children.setdefault(int(fields[1]), []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def mentioning(text: str) -> list[str]:
    """명령 줄에 text가 들어 있는 살아 있는 프로세스마다 "PID: 명령 줄" 한 줄을 돌려준다."""
    return [f"{pid}: {line}" for pid in live_pids() if (line := command_line(pid)) is not None and text in line]
