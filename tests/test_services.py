"""학습자가 띄우는 서비스: docker-compose.yml 의 고정한 줄, CI 가 확인하는 버전, 서비스가 꺼져 있을 때 실행기와
테스트 세션이 하는 일(docker compose 로 띄우거나, Docker 가 없으면 무엇을 켤지 말하기)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from kombu import Connection

import global_config
from course import SERVICES
from playground import PROJECT_ROOT, broker
from playground.runner import EXIT_SERVICES_DOWN
from playground.services import compose_up_command
from playground.versions import compose_images, line_of, mismatches, running_versions

FAIL_FAST_SECONDS = 30
URL_NAMES = [service.env_var for service in SERVICES]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_compose_pins_the_2026_lines(compose):
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images["rabbitmq"] == "rabbitmq:4.3-management"
    assert line_of("postgres", images["postgres"].split(":")[1]) == "18"
    assert line_of("redis", images["redis"].split(":")[1]) == "8.0"
    assert images["redisinsight"].startswith("redis/redisinsight:2.")
    assert compose_images() == images  # 실행기가 yaml 없이 읽은 것도 같다


def test_postgres_18_keeps_its_volume_at_var_lib_postgresql(compose):
    assert compose["services"]["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql"]


def test_redisinsight_comes_with_the_redis_connection_and_waits_for_redis(compose):
    insight = compose["services"]["redisinsight"]
    assert insight["environment"]["RI_REDIS_HOST"] == "redis"
    assert insight["environment"]["RI_REDIS_PORT"] == "6379"
    assert insight["depends_on"] == {"redis": {"condition": "service_healthy"}}


def test_a_different_line_is_reported_with_both_versions():
    images = compose_images()
    running = {"rabbitmq": "4.3.9", "postgres": "18.1", "redis": "8.0.2"}
    assert mismatches(running, images) == []  # 같은 줄의 다른 패치 버전은 괜찮다
    running = {"rabbitmq": "3.10.8", "postgres": "15.20", "redis": "8.2.1"}
    problems = mismatches(running, images)
    assert problems == [
        "RabbitMQ: the tested server is 3.10.8, docker-compose.yml pins rabbitmq:4.3-management (line 4.3)",
        f"PostgreSQL: the tested server is 15.20, docker-compose.yml pins {images['postgres']} (line 18)",
        f"Redis: the tested server is 8.2.1, docker-compose.yml pins {images['redis']} (line 8.0)",
    ]


def test_the_servers_report_their_versions():
    versions = running_versions()
    assert set(versions) == {"rabbitmq", "postgres", "redis"}
    assert all(line_of(name, version) for name, version in versions.items())


# --- 서비스가 꺼져 있을 때 ------------------------------------------------------------------------------------
# 기본 주소(localhost)의 서비스가 모두 꺼진 기계를 흉내 낸다: 새 네트워크 네임스페이스에는 아무것도 듣지 않는다.
# (이 기계의 서비스는 그대로 두고, 그 네임스페이스 안의 프로세스에게만 보이지 않는다.)


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False).returncode == 0


needs_netns = pytest.mark.skipif(
    not _namespaces_work(), reason="needs `unshare --net` (root) to make a machine where nothing listens"
)


def _without_url_overrides() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in URL_NAMES and not k.startswith("PYTEST_XDIST")}


def _path_without_docker() -> str:
    dirs = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "docker").exists()]
    return os.pathsep.join(dirs)


def stand_in_docker(tmp_path: Path) -> tuple[Path, Path]:
    """`docker` 대역: 진짜 Docker 가 아니다. 받은 인자를 한 줄씩 JSON 으로 적고, 성공(0)으로 끝난다."""
    bin_dir, record = tmp_path / "bin", tmp_path / "docker-calls.jsonl"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(0o755)
    return bin_dir, record


def in_empty_network(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=FAIL_FAST_SECONDS,
    )  # fmt: skip


@needs_netns
def test_without_docker_the_runner_says_what_to_start():
    env = {**_without_url_overrides(), "PATH": _path_without_docker()}
    run = in_empty_network([sys.executable, "-m", "playground", "practice02"], env)
    assert run.returncode == EXIT_SERVICES_DOWN, run.stdout + run.stderr
    for service in SERVICES:
        assert f"{service.name}에 연결할 수 없습니다" in run.stdout
        assert f"docker compose up -d {service.compose_service}" in run.stdout
    assert "docker compose 로 띄웁니다" not in run.stdout


@needs_netns
def test_with_docker_compose_the_runner_starts_the_services_printing_the_command_first(tmp_path):
    bin_dir, record = stand_in_docker(tmp_path)
    env = {**_without_url_overrides(), "PATH": f"{bin_dir}{os.pathsep}{_path_without_docker()}"}
    run = in_empty_network([sys.executable, "-m", "playground", "practice02"], env)
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    command = compose_up_command(list(SERVICES))
    assert command == ["docker", "compose", "up", "-d", "--wait", "rabbitmq", "postgres", "redis"]
    assert calls == [["compose", "version"], command[1:]]
    first_line = run.stdout.splitlines()[0]
    assert first_line == f"꺼져 있는 서비스를 docker compose 로 띄웁니다: {' '.join(command)}"
    # 대역은 아무것도 띄우지 않았으므로, 그다음은 Docker 가 없을 때와 같은 안내다.
    assert run.returncode == EXIT_SERVICES_DOWN
    assert "RabbitMQ에 연결할 수 없습니다" in run.stdout


@needs_netns
def test_with_docker_compose_only_services_at_their_default_address_are_started(tmp_path):
    bin_dir, record = stand_in_docker(tmp_path)
    env = {
        **_without_url_overrides(),
        "PATH": f"{bin_dir}{os.pathsep}{_path_without_docker()}",
        "REDIS_URL": "redis://localhost:1",  # 학습자가 직접 고른 주소: compose 가 띄울 곳이 아니다
    }
    run = in_empty_network([sys.executable, "-m", "playground", "practice02"], env)
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls[-1] == ["compose", "up", "-d", "--wait", "rabbitmq", "postgres"]
    assert run.returncode == EXIT_SERVICES_DOWN


@needs_netns
def test_the_test_session_starts_the_services_with_docker_compose_too(tmp_path):
    bin_dir, record = stand_in_docker(tmp_path)
    env = {**_without_url_overrides(), "PATH": f"{bin_dir}{os.pathsep}{_path_without_docker()}"}
    run = in_empty_network(
        [sys.executable, "-m", "pytest", "tests/test_project_files.py", "-p", "no:cacheprovider", "-p", "no:xdist"],
        env,
    )
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert calls[-1] == ["compose", "up", "-d", "--wait", "rabbitmq", "postgres", "redis"]
    assert "docker compose up -d --wait rabbitmq postgres redis" in run.stdout
    assert run.returncode == EXIT_SERVICES_DOWN
    assert " passed" not in run.stdout


# --- RabbitMQ 4.x 에서 관리 UI 로 보이는 것 -----------------------------------------------------------------------


rabbitmq_4 = pytest.mark.skipif("broker.server_major() < 4", reason="RabbitMQ 4.x behaviour; this broker is older")


@rabbitmq_4
def test_two_workers_with_the_same_node_name_cannot_run_at_once():
    import uuid

    from playground.workers import Worker, running

    name = f"twin-{uuid.uuid4().hex[:6]}"
    with running(Worker("practice02", name=name, concurrency=1)) as (first,):
        second = Worker("practice02", name=name, concurrency=1).start()
        try:
            second.wait_for_log(r"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue", 30)
            assert second.proc.wait(30) == 1
            assert f"'{first.node}.celery.pidbox'" in second.log
        finally:
            second.stop()
        assert first.proc.poll() is None  # 먼저 뜬 워커는 그대로 돈다


@rabbitmq_4
def test_an_exclusive_control_queue_goes_with_the_worker_that_declared_it():
    import time
    import uuid

    from playground.workers import Worker, running

    with running(Worker("practice02", name=f"gone-{uuid.uuid4().hex[:6]}", concurrency=1)) as (worker,):
        control = f"{worker.node}.celery.pidbox"
        assert control in [queue["name"] for queue in broker.queues()]
    deadline = time.monotonic() + 10
    while control in [queue["name"] for queue in broker.queues()]:
        assert time.monotonic() < deadline, f"{control} is still there after its worker stopped"
        time.sleep(0.2)


@rabbitmq_4
def test_rabbitmq_4_3_denies_global_qos_but_still_permits_transient_non_exclusive_queues():
    # README: global_qos 는 denied, transient_nonexcl_queues 는 아직 permitted (4.3 의 기본값).
    states = {feature["name"]: feature["state"] for feature in broker.management("GET", "deprecated-features")}
    assert states["global_qos"] == "denied"
    assert states["transient_nonexcl_queues"] == "permitted"
    name = f"transient-{uuid.uuid4().hex[:6]}"
    with Connection(global_config.RABBITMQ_URL) as conn:
        channel = conn.channel()
        channel.queue_declare(name, durable=False, exclusive=False, auto_delete=False)  # 거절되지 않는다
        channel.queue_delete(name)
