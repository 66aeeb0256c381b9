"""docker-compose.yml describes the production-like cluster the worker expects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.search_attributes import ALL, CLI_TYPES

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY", re.IGNORECASE)
# A secret may only come from the environment: ${VAR} or ${VAR:?message}, never with a default.
SERVICES = {"postgresql", "temporal", "temporal-admin-tools", "temporal-ui", "worker"}
FROM_ENVIRONMENT = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a mapping, whichever of the two compose spellings it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: None if value is None else str(value) for key, value in env.items()}


def setting(service: dict[str, Any], key: str) -> str:
    """One environment value that the file must spell out."""
    value = environment(service)[key]
    assert value is not None, f"{key} has no value"
    return value


def test_compose_runs_temporal_on_postgres_with_ui_admin_tools_and_worker(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    assert services["postgresql"]["image"] == "postgres:16"
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert setting(services["temporal"], "POSTGRES_SEEDS") == "postgresql"
    assert services["temporal-admin-tools"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert any(str(p).endswith(":8080") for p in services["temporal-ui"]["ports"])


def test_worker_is_built_from_deploy_dockerfile_and_points_at_the_temporal_service(compose):
    worker = compose["services"]["worker"]
    build = worker["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    host, port = setting(worker, "FITNEST_TEMPORAL_ADDRESS").split(":")
    assert host in compose["services"] and port == "7233"
    admin = compose["services"]["temporal-admin-tools"]
    assert setting(worker, "FITNEST_NAMESPACE") == setting(admin, "FITNEST_NAMESPACE")
    dockerfile = (ROOT / build["dockerfile"]).read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert 'CMD ["python", "-m", "workers.worker"]' in dockerfile


def test_worker_starts_after_the_cluster_is_healthy_and_attributes_are_registered(compose):
    services = compose["services"]
    assert services["worker"]["depends_on"] == {
        "temporal": {"condition": "service_healthy"},
        "temporal-admin-tools": {"condition": "service_completed_successfully"},
    }
    assert services["temporal"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    for name in ("postgresql", "temporal", "worker"):
        assert services[name]["healthcheck"]["test"], name
    healthcheck = services["worker"]["healthcheck"]["test"]
    assert (ROOT / "deploy" / Path(healthcheck[-1]).name).is_file()


def test_admin_tools_register_exactly_the_search_attributes_the_code_declares(compose):
    admin = compose["services"]["temporal-admin-tools"]
    pairs = setting(admin, "FITNEST_SEARCH_ATTRIBUTES").split()
    declared = dict(pair.split("=", 1) for pair in pairs)
    assert declared == {key.name: CLI_TYPES[key.indexed_value_type.name] for key in ALL}
    script = admin["entrypoint"][-1]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in admin["volumes"]}
    assert (ROOT / mounts[script]).is_file()


def test_compose_commits_no_secret_values(compose):
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and value is not None:
                assert FROM_ENVIRONMENT.match(value), f"{name}.{key} has a value in the file"


def test_every_host_path_the_compose_file_mounts_exists(compose):
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
