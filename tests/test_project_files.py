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


def test_compose_has_the_three_services_and_the_redis_ui(compose):
    assert set(compose["services"]) == {"rabbitmq", "postgres", "redis", "redisinsight"}


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
        for mapping in service["ports"]:
            assert mapping.startswith("127.0.0.1:"), f"{name}: {mapping} is reachable from other machines"
    published = {name: _published(service) for name, service in compose["services"].items()}
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
