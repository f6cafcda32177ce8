"""설정된 세 서버의 버전을 묻고, docker-compose.yml 이 고정한 줄(major.minor)과 같은지 본다.

    python -m playground.versions               # 버전을 찍고, 줄이 다르면 두 버전을 모두 말하며 종료 코드 1
    python -m playground.versions --print-only  # 찍기만 한다 (호환성 확인용 옛 서버)

CI는 테스트를 실행한 서버가 학습자가 docker compose로 띄우는 서버와 같은 줄인지 이것으로 확인한다.
"""

from __future__ import annotations

import re
import sys

import redis
import sqlalchemy
from sqlalchemy.pool import NullPool

import global_config
from playground import PROJECT_ROOT, broker
from playground.services import SERVICES, sqlalchemy_url

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"


def running_versions() -> dict[str, str]:
    """서비스 이름(compose의 서비스 이름) → 지금 설정된 서버가 말하는 버전."""
    client = redis.Redis.from_url(global_config.REDIS_URL)
    try:
        redis_version = client.info("server")["redis_version"]
    finally:
        client.close()
    engine = sqlalchemy.create_engine(sqlalchemy_url(global_config.POSTGRES_URL), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            postgres_version = conn.execute(sqlalchemy.text("SHOW server_version")).scalar_one().split()[0]
    finally:
        engine.dispose()
    return {
        "rabbitmq": broker.server_version(),
        "redis": redis_version,
        "postgres": postgres_version,
    }


def compose_images() -> dict[str, str]:
    """docker-compose.yml 의 서비스 이름 → 이미지 (실행기는 개발 의존성 없이 실행되므로 yaml 없이 읽는다).

    클러스터의 노드들처럼 한 서비스의 설정을 앵커(`<<: &이름`)로 적고 다른 서비스가 그것을 병합(`<<: *이름`)하면, 병합한
    서비스도 그 이미지를 쓴다.
    """
    images: dict[str, str] = {}
    anchored: dict[str, str] = {}
    service = anchor = None
    for line in COMPOSE_FILE.read_text().splitlines():
        if re.fullmatch(r"\S.*", line):  # 최상위 키(services:, volumes:)
            service = anchor = None
        elif match := re.fullmatch(r"  ([a-z][a-z0-9-]*):", line):
            service, anchor = match.group(1), None
        elif service is None:
            continue
        elif match := re.fullmatch(r"    <<: &(\S+)", line):
            anchor = match.group(1)
        elif (match := re.fullmatch(r"    <<: \*(\S+)", line)) and match.group(1) in anchored:
            images[service] = anchored[match.group(1)]
        elif match := re.fullmatch(r"    (?:  )?image: (\S+)", line):
            images[service] = match.group(1)
            if anchor:
                anchored[anchor] = match.group(1)
    return images


def line_of(service: str, version: str) -> str:
    """지원 줄: PostgreSQL은 major 하나('18.6' → '18'), 나머지는 major.minor('4.3.6', '4.3-management' → '4.3')."""
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    if numbers is None:
        raise ValueError(f"no version number in {version!r}")
    parts = numbers.group(0).split(".")
    return ".".join(parts[: 1 if service == "postgres" else 2])


def mismatches(running: dict[str, str], images: dict[str, str]) -> list[str]:
    """고정한 줄과 다른 서버마다 한 줄: 서비스, 실행 중인 버전, compose의 이미지."""
    problems = []
    for service in SERVICES:
        name = service.compose_service
        image_tag = images[name].rsplit(":", 1)[1]
        pinned = line_of(name, image_tag)
        if line_of(name, running[name]) != pinned:
            problems.append(
                f"{service.name}: the tested server is {running[name]}, docker-compose.yml pins {images[name]} "
                f"(line {pinned})"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    running = running_versions()
    images = compose_images()
    for service in SERVICES:
        name = service.compose_service
        print(f"{service.name:<10} {running[name]:<8} (docker-compose.yml: {images[name]})")
    if "--print-only" in args:
        return 0
    problems = mismatches(running, images)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
