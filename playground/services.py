"""세 서비스가 응답하는지 보고, 기본 주소(localhost)의 서비스가 꺼져 있으면 docker compose 로 띄운다.

실행기(`python -m playground`)와 테스트 세션이 시작할 때 쓴다. 환경 변수로 주소를 바꾼 서비스는 학습자가 따로
돌리는 것이므로 건드리지 않는다. Docker(와 compose)가 없으면 아무것도 띄우지 않고, 무엇을 켜야 하는지만 말한다.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from course import SERVICES, Service, problem_with, unreachable_services
from playground import PROJECT_ROOT

COMPOSE_PROBE_SECONDS = 15
# 이미지를 처음 내려받는 데 걸리는 시간까지 넉넉히. 그래도 끝나지 않으면 멈춘 것으로 본다.
COMPOSE_UP_SECONDS = 600


def down_at_default_address() -> list[Service]:
    """환경 변수로 주소를 바꾸지 않았는데(기본값 = docker-compose 가 여는 localhost 포트) 응답하지 않는 서비스."""
    return [service for service in SERVICES if service.env_var not in os.environ and problem_with(service, service.url)]


def compose_available() -> bool:
    """`docker compose` 를 쓸 수 있는가(Docker 클라이언트와 compose 플러그인)."""
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=COMPOSE_PROBE_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def compose_up_command(services: list[Service]) -> list[str]:
    return ["docker", "compose", "up", "-d", "--wait", *(service.compose_service for service in services)]


def ensure_services(say: Callable[[str], None] = print) -> list[str]:
    """꺼진 서비스를 (할 수 있으면) 띄운 뒤, 여전히 응답하지 않는 서비스마다 설명 한 덩어리를 돌려준다."""
    startable = down_at_default_address()
    if startable and compose_available():
        command = compose_up_command(startable)
        say(f"꺼져 있는 서비스를 docker compose 로 띄웁니다: {' '.join(command)}")
        try:
            started = subprocess.run(command, cwd=PROJECT_ROOT, timeout=COMPOSE_UP_SECONDS, check=False)
            if started.returncode != 0:
                say(f"docker compose 가 종료 코드 {started.returncode} 로 끝났습니다.")
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"docker compose 를 끝내지 못했습니다: {exc}")
    return unreachable_services()
