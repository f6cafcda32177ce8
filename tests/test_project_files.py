"""global_config 의 기본값과 환경 변수, 그리고 학습자용 docker-compose.yml 을 확인한다."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from urllib.parse import urlsplit

import pytest
import sqlalchemy
import yaml

from playground import PROJECT_ROOT
from playground.services import sqlalchemy_url

URL_NAMES = ("REDIS_URL", "RABBITMQ_URL", "POSTGRES_URL", "RABBITMQ_CLUSTER_URLS")
DEFAULTS = {
    "REDIS_URL": "redis://localhost:6379",
    "RABBITMQ_URL": "amqp://localhost:5672",
    "POSTGRES_URL": "db+postgresql+psycopg2://postgres:postgres@localhost:5432/celery_jobs",
    "RABBITMQ_CLUSTER_URLS": "amqp://localhost:5681;amqp://localhost:5682;amqp://localhost:5683",
}


def load_global_config(**env: str) -> dict[str, str]:
    """새 파이썬 프로세스에서 global_config 를 읽는다(이 프로세스의 환경 변수는 섞지 않는다)."""
    clean = {k: v for k, v in os.environ.items() if k not in URL_NAMES}
    code = f"import json, global_config as g; print(json.dumps({{n: getattr(g, n) for n in {URL_NAMES!r}}}))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env={**clean, **env},
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return json.loads(out)


def test_global_config_defaults():
    assert load_global_config() == DEFAULTS


@pytest.mark.parametrize("name", URL_NAMES)
def test_each_url_is_overridden_by_the_env_var_of_the_same_name(name):
    values = load_global_config(**{name: "scheme://elsewhere:1"})
    assert values[name] == "scheme://elsewhere:1"
    assert {k: v for k, v in values.items() if k != name} == {k: v for k, v in DEFAULTS.items() if k != name}


def test_global_config_holds_only_the_three_urls_and_the_cluster_list():
    import global_config

    public = {name for name in vars(global_config) if not name.startswith("_") and name != "os"}
    assert public == set(URL_NAMES)


def test_postgres_url_names_the_psycopg2_driver_explicitly():
    url = sqlalchemy_url(DEFAULTS["POSTGRES_URL"])
    assert url.get_driver_name() == "psycopg2"


def test_without_the_driver_sqlalchemy_looks_for_psycopg3_which_is_not_installed():
    # README: SQLAlchemy 2.1은 드라이버 없는 postgresql:// 을 psycopg(3)로 연다. 설치된 것은 psycopg2-binary 다.
    assert sqlalchemy.__version__.startswith("2.1")
    with pytest.raises(ModuleNotFoundError, match="No module named 'psycopg'"):
        sqlalchemy.create_engine("postgresql://postgres:postgres@localhost:5432/celery_jobs")


def _default_services(compose: dict) -> dict:
    """`docker compose up -d` 가 띄우는 서비스들. 프로필이 있는 서비스는 `--profile` 을 줄 때만 뜬다."""
    return {name: service for name, service in compose["services"].items() if not service.get("profiles")}


def test_compose_has_the_three_services_and_the_redis_ui(compose):
    assert set(_default_services(compose)) == {"rabbitmq", "postgres", "redis", "redisinsight"}


def test_compose_images_are_pinned_to_versions(compose):
    for name, service in compose["services"].items():
        image, _, tag = service["image"].rpartition(":")
        assert image and re.match(r"\d+\.\d+", tag), f"{name}: {service['image']} is not pinned to a version"
        assert "latest" not in tag


def test_compose_services_have_healthchecks(compose):
    for name, service in compose["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_compose_binds_every_port_to_localhost_only(compose):
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), f"{name}: {mapping} is reachable from other machines"
    published = {name: _published(service) for name, service in _default_services(compose).items()}
    assert published == {"rabbitmq": {5672, 15672}, "postgres": {5432}, "redis": {6379}, "redisinsight": {5540}}


def test_compose_agrees_with_global_config(compose):
    assert urlsplit(DEFAULTS["RABBITMQ_URL"]).port in _published(compose["services"]["rabbitmq"])
    assert urlsplit(DEFAULTS["REDIS_URL"]).port in _published(compose["services"]["redis"])
    postgres = compose["services"]["postgres"]
    url = sqlalchemy_url(DEFAULTS["POSTGRES_URL"])
    assert url.port in _published(postgres)
    assert postgres["environment"] == {
        "POSTGRES_USER": url.username,
        "POSTGRES_PASSWORD": url.password,
        "POSTGRES_DB": url.database,
    }
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "PostgreSQL data should live in a named volume"


def _published(service: dict) -> set[int]:
    return {int(mapping.split(":")[1]) for mapping in service["ports"]}


def test_the_readme_names_the_versions_uv_sync_installs():
    readme = (PROJECT_ROOT / "docs" / "runner.md").read_text()
    named = dict(re.findall(r"(Celery|SQLAlchemy) (\d+\.\d+\.\d+)", readme))
    assert named == {"Celery": version("celery"), "SQLAlchemy": version("sqlalchemy")}


def test_uv_lock_is_ignored_and_resolution_is_pinned_by_date():
    assert "uv.lock" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00Z", pyproject["tool"]["uv"]["exclude-newer"])
    assert pyproject["project"]["requires-python"] == ">=3.13"


def test_compose_practice13_worker_is_the_one_the_lesson_readme_quotes(compose):
    # practice13 README의 yaml 조각이 docker-compose.yml 의 worker 서비스와 같다. 그 README가 말하는 값들도 본다.
    from tests.readme import readme

    worker = compose["services"]["worker"]
    for name in ("practice13/README.md", "practice13/README.en.md"):
        (snippet,) = re.findall(r"```yaml\n(.*?)```", readme(name), re.DOTALL)
        assert yaml.safe_load(snippet) == {"worker": worker}
    assert worker["profiles"] == ["practice13"]
    assert worker["stop_signal"] == "SIGTERM"
    assert worker["stop_grace_period"] == "30s"
    environment = worker["environment"]
    assert environment["REMAP_SIGTERM"] == "SIGQUIT"
    assert float(environment["PRACTICE13_SOFT_SHUTDOWN_SECONDS"]) < 30  # soft shutdown은 유예 시간보다 짧다
    assert worker["mem_limit"] == "512m" and worker["cpus"] == 1.0
    assert worker["memswap_limit"] == worker["mem_limit"]  # 스왑 없이 mem_limit 에서 OOM 킬
    assert "exec /venv/bin/celery -A practice13.tasks worker" in worker["command"]
    assert "--concurrency=auto" in worker["command"]
    assert worker["healthcheck"]["test"][-3:] == ["-m", "practice13.probe", "live"]
    # 컨테이너 안의 주소는 서비스 이름이다. 포트는 global_config 의 기본값과 같다.
    assert urlsplit(environment["RABBITMQ_URL"]).port == urlsplit(DEFAULTS["RABBITMQ_URL"]).port
    assert urlsplit(environment["REDIS_URL"]).port == urlsplit(DEFAULTS["REDIS_URL"]).port
    assert {urlsplit(environment[n]).hostname for n in ("RABBITMQ_URL", "REDIS_URL")} <= set(compose["services"])
    assert environment["POSTGRES_URL"] == DEFAULTS["POSTGRES_URL"].replace("@localhost:", "@postgres:")


def test_compose_cluster_profile_is_three_clustered_rabbitmq_nodes_on_the_cluster_urls(compose):
    # practice14: docker compose --profile cluster up -d 는 RabbitMQ 노드 세 개를 띄운다. 노드들은
    # practice14/rabbitmq-cluster.conf 의 목록(classic config peer discovery)으로 한 클러스터가 된다.
    nodes = {name: s for name, s in compose["services"].items() if s.get("profiles") == ["cluster"]}
    assert sorted(nodes) == ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
    conf_files = set()
    for name, node in nodes.items():
        assert node["image"] == compose["services"]["rabbitmq"]["image"]
        assert node["hostname"] == name
        assert node["healthcheck"]["test"] == compose["services"]["rabbitmq"]["healthcheck"]["test"]
        (mount,) = node["volumes"]
        source, target, mode = mount.split(":")
        assert target.startswith("/etc/rabbitmq/conf.d/") and mode == "ro"
        conf_files.add(source)
    cookies = {node["environment"]["RABBITMQ_ERLANG_COOKIE"] for node in nodes.values()}
    assert len(cookies) == 1  # 세 노드가 같은 Erlang 쿠키를 쓴다
    (conf_file,) = conf_files
    settings = dict(
        line.split(" = ")
        for line in (PROJECT_ROOT / conf_file).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert settings.pop("cluster_formation.peer_discovery_backend") == "classic_config"
    assert sorted(settings.values()) == [f"rabbit@{name}" for name in sorted(nodes)]
    assert all(key.startswith("cluster_formation.classic_config.nodes.") for key in settings)
    # 노드마다 AMQP 포트(5672)가 주소 목록의 포트로, 관리 UI(15672)가 그 포트에 10000을 더한 포트로 열린다.
    cluster_ports = [urlsplit(url).port for url in DEFAULTS["RABBITMQ_CLUSTER_URLS"].split(";")]
    for (name, node), port in zip(sorted(nodes.items()), cluster_ports, strict=True):
        assert node["ports"] == [f"127.0.0.1:{port}:5672", f"127.0.0.1:{port + 10000}:15672"], name
