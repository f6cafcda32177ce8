"""학습자가 띄우는 서비스: docker-compose.yml 의 고정한 줄, CI가 확인하는 버전, 서비스가 꺼져 있을 때 실행기와
테스트 세션이 하는 일(docker compose로 띄우거나, Docker가 없으면 무엇을 켤지 말하기)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from kombu import Connection

import global_config
from course import wait_until
from playground import PROJECT_ROOT, broker
from playground.lessons import run_call_tasks
from playground.runner import EXIT_SERVICES_DOWN
from playground.services import (
    SERVICES,
    MissingDatabase,
    compose_up_command,
    database_is_missing,
    describe_unreachable,
    ensure_services,
    postgres_engine,
    probe_failure,
    sqlalchemy_url,
)
from playground.versions import compose_images, line_of, mismatches, running_versions

FAIL_FAST_SECONDS = 30
URL_NAMES = [service.env_var for service in SERVICES]


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
    """`docker` 대역: 실제 Docker가 아니다. 받은 인자를 한 줄씩 JSON으로 적고, 성공(0)으로 끝난다."""
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
    assert "docker compose로 띄웁니다" not in run.stdout


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
    assert first_line == f"꺼져 있는 서비스를 docker compose로 띄웁니다: {' '.join(command)}"
    # 대역은 아무것도 띄우지 않았으므로, 그다음은 Docker가 없을 때와 같은 안내다.
    assert run.returncode == EXIT_SERVICES_DOWN
    assert "RabbitMQ에 연결할 수 없습니다" in run.stdout


@needs_netns
def test_with_docker_compose_only_services_at_their_default_address_are_started(tmp_path):
    bin_dir, record = stand_in_docker(tmp_path)
    env = {
        **_without_url_overrides(),
        "PATH": f"{bin_dir}{os.pathsep}{_path_without_docker()}",
        "REDIS_URL": "redis://localhost:1",  # 학습자가 직접 고른 주소: compose가 띄울 곳이 아니다
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


# --- RabbitMQ 4.x 에서 관리 UI로 보이는 것 -----------------------------------------------------------------------


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
    import uuid

    from playground.workers import Worker, running

    with running(Worker("practice02", name=f"gone-{uuid.uuid4().hex[:6]}", concurrency=1)) as (worker,):
        control = f"{worker.node}.celery.pidbox"
        assert control in [queue["name"] for queue in broker.queues()]
    wait_until(lambda: control not in [queue["name"] for queue in broker.queues()], f"{control} 큐가 사라짐", 10)


@rabbitmq_4
def test_rabbitmq_4_3_denies_global_qos_but_still_permits_transient_non_exclusive_queues():
    # README: global_qos 는 denied, transient_nonexcl_queues 는 아직 permitted (4.3의 기본값).
    states = {feature["name"]: feature["state"] for feature in broker.management("GET", "deprecated-features")}
    assert states["global_qos"] == "denied"
    assert states["transient_nonexcl_queues"] == "permitted"
    name = f"transient-{uuid.uuid4().hex[:6]}"
    with Connection(global_config.RABBITMQ_URL) as conn:
        channel = conn.channel()
        channel.queue_declare(name, durable=False, exclusive=False, auto_delete=False)  # 거절되지 않는다
        channel.queue_delete(name)


# --- 서버는 응답하는데 데이터베이스만 없을 때 -----------------------------------------------------------------
# Docker 없이 기계에 설치한 PostgreSQL을 흉내 낸다. 설정된 서버는 그대로 응답하고, `POSTGRES_URL` 만 그 서버에
# 아직 없는 새 이름을 가리킨다. 실행기와 테스트 세션(`ensure_services`)은 그 데이터베이스를 만든다.
# `call_tasks` 는 만들지 않고 createdb를 권한다.

RUNNER_SECONDS = 90  # practice00을 처음부터 끝까지 돌리는 데 드는 시간의 상한(멈춤을 잡는다)
CREATED_LINE = "PostgreSQL에 데이터베이스가 없어서 만들었습니다: {}"
POSTGRES = SERVICES[1]


def _configured() -> sqlalchemy.URL:
    return sqlalchemy_url(global_config.POSTGRES_URL)


def _admin(*statements: str) -> list[tuple]:
    """설정된 URL의 사용자로 관리용 데이터베이스 postgres에서 문장들을 실행하고, 마지막 문장의 행을 돌려준다."""
    engine = postgres_engine(global_config.POSTGRES_URL, database="postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            results = [conn.execute(sqlalchemy.text(statement)) for statement in statements]
            return [tuple(row) for row in results[-1]] if results[-1].returns_rows else []
    finally:
        engine.dispose()


def _database_there(name: str) -> bool:
    return bool(_admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))


def _postgres_url(name: str, username: str | None = None) -> str:
    url = _configured().set(database=name)
    if username is not None:
        url = url.set(username=username, password=None)  # 설정된 서버는 trust 인증이다
    return "db+" + url.render_as_string(hide_password=False)


def _createdb(name: str, username: str) -> str:
    url = _configured()
    return f"createdb --host={url.host} --port={url.port} --username={username} {name}"


needs_createdb = pytest.mark.skipif(shutil.which("createdb") is None, reason="needs the PostgreSQL client createdb")


@pytest.fixture
def missing_database():
    """설정된 서버에 아직 없는 데이터베이스 이름. 끝나면 (생겼으면) 지운다. 다른 데이터베이스는 건드리지 않는다."""
    name = f"celery_missing_{uuid.uuid4().hex[:10]}"
    assert not _database_there(name)
    try:
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def role_without_createdb(missing_database):
    """로그인은 되지만 CREATEDB 권한은 없는 임시 역할. 끝나면 지운다."""
    role = f"celery_nocreate_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        yield role
    finally:
        # 그 역할이 주인인 데이터베이스가 있으면 역할을 지울 수 없다: 데이터베이스부터 지운다.
        _admin(f'DROP DATABASE IF EXISTS "{missing_database}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{role}"')


def _runner(lesson: str, postgres_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground", lesson], cwd=PROJECT_ROOT,
        env={**os.environ, "POSTGRES_URL": postgres_url}, capture_output=True, text=True, timeout=RUNNER_SECONDS,
    )  # fmt: skip


def test_the_runner_creates_a_missing_database_says_so_in_one_line_and_runs_the_lesson(missing_database):
    run = _runner("practice00", _postgres_url(missing_database))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == CREATED_LINE.format(missing_database)  # 서비스 점검이 맨 먼저 말한다
    assert lines.count(CREATED_LINE.format(missing_database)) == 1
    assert "docker compose" not in run.stdout
    assert "━━ practice00: 통과" in run.stdout
    assert _database_there(missing_database)


def test_ensure_services_creates_a_missing_database_and_reports_nothing_unreachable(missing_database, monkeypatch):
    # 테스트 세션(`pytest_sessionstart`)도 이 함수를 부른다. 서비스 주소는 `global_config` 에서 읽는다.
    monkeypatch.setattr(global_config, "POSTGRES_URL", _postgres_url(missing_database))
    said: list[str] = []
    assert ensure_services(said.append) == []
    assert said == [CREATED_LINE.format(missing_database)]
    assert _database_there(missing_database)
    said.clear()
    assert ensure_services(said.append) == []  # 이제 있으므로 만들지도, 말하지도 않는다
    assert said == []


def test_a_role_without_createdb_is_told_the_createdb_command_and_nothing_is_created(
    role_without_createdb, missing_database
):
    role = role_without_createdb
    run = _runner("practice00", _postgres_url(missing_database, username=role))
    assert run.returncode == EXIT_SERVICES_DOWN, run.stdout + run.stderr
    assert f"PostgreSQL 서버는 응답하지만 데이터베이스가 없습니다: {missing_database}\n" in run.stdout
    assert f"\n  만들기: {_createdb(missing_database, role)}\n" in run.stdout
    assert "InsufficientPrivilege: permission denied to create database" in run.stdout
    assert run.stdout.rstrip().endswith(f"소유자를 이 역할로 정하세요: --owner={role}")
    assert "docker compose up -d postgres" not in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert not _database_there(missing_database)


@needs_createdb
def test_the_advice_for_a_role_without_createdb_works_when_a_role_with_it_runs_createdb(
    role_without_createdb, missing_database
):
    role = role_without_createdb
    url = _postgres_url(missing_database, username=role)
    assert isinstance(probe_failure(POSTGRES, url), MissingDatabase)
    # 권한이 있는 역할(설정된 URL의 사용자)이 안내대로 `--owner` 를 붙여 만든다.
    command = [*_createdb(missing_database, _configured().username).split(), f"--owner={role}"]
    subprocess.run(command, check=True, capture_output=True, timeout=FAIL_FAST_SECONDS)
    assert probe_failure(POSTGRES, url) is None
    # 주인이 된 역할은 결과 백엔드처럼 테이블을 만들 수 있다(PostgreSQL 15부터 public 스키마는 데이터베이스 주인의
    # 것이어서, 주인이 아닌 역할은 만들 수 없다).
    engine = postgres_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE celery_probe (id integer)"))
    finally:
        engine.dispose()


def test_call_tasks_alone_with_a_missing_database_advises_createdb_and_exits_1(missing_database):
    run = run_call_tasks("practice00", env={"POSTGRES_URL": _postgres_url(missing_database)}, timeout=FAIL_FAST_SECONDS)
    assert run.returncode == 1, run.output
    assert f"PostgreSQL 서버는 응답하지만 데이터베이스가 없습니다: {missing_database}\n" in run.output
    assert f'database "{missing_database}" does not exist' in run.output
    assert f"\n  만들기: {_createdb(missing_database, _configured().username)}\n" in run.output
    assert "docker compose up -d postgres" not in run.output
    assert "Traceback" not in run.output
    assert not _database_there(missing_database)  # call_tasks 는 만들지 않는다


@needs_createdb
def test_the_createdb_command_call_tasks_advises_creates_that_database(missing_database):
    url = _postgres_url(missing_database)
    failure = probe_failure(POSTGRES, url)
    assert isinstance(failure, MissingDatabase)
    advice = describe_unreachable(POSTGRES, url, failure)
    command = advice.split("  만들기: ")[1].splitlines()[0]
    subprocess.run(shlex.split(command), check=True, capture_output=True, timeout=FAIL_FAST_SECONDS)
    assert _database_there(missing_database)
    assert probe_failure(POSTGRES, url) is None


def test_a_missing_database_is_recognised_when_the_server_answers_in_another_language(missing_database):
    # 서버의 lc_messages 가 영어가 아니면 "database … does not exist" 가 번역되어 온다. 그때는 pg_database 에 묻는다.
    translated = f'connection to server failed: 치명적오류:  "{missing_database}" 데이터베이스 없음'
    assert database_is_missing(_postgres_url(missing_database), translated)
    assert not database_is_missing(global_config.POSTGRES_URL, translated)  # 있는 데이터베이스
    assert not _database_there(missing_database)  # 묻기만 하고 만들지 않는다
