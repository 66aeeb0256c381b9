"""docker-compose.yml describes the production-like cluster the code expects.

No Docker engine runs here, so the file is read as data and checked against the code: ports
against the settings' defaults, search attributes against ``workflows.search_attributes``, the
task queue against ``workers.settings.TASK_QUEUE``, every ``FITNEST_`` variable against the
settings' fields, images pinned, secrets only from the environment, workers scalable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from workers.settings import TASK_QUEUE, Settings
from workflows.search_attributes import ALL, CLI_TYPES

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY", re.IGNORECASE)
# A secret may only come from the environment: ${VAR} or ${VAR:?message}, never with a default.
FROM_ENVIRONMENT = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
FITNEST_SERVICES = {"keyring", "seal-keyring", "worker", "codec-server", "ui"}
SERVICES = FITNEST_SERVICES | {
    "postgresql",
    "ledger-db",
    "temporal-schema",
    "temporal",
    "temporal-setup",
    "temporal-ui",
    "prometheus",
}
PINNED = re.compile(r"^[\w./-]+:(?!latest$)[\w.-]*\d[\w.-]*$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


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


def container_port(mapping: str) -> int:
    """The container side of a ``[host_ip:]host_port:container_port`` mapping."""
    return int(str(mapping).rsplit(":", 1)[1])


def test_compose_runs_the_whole_stack(services):
    assert set(services) == SERVICES
    assert services["postgresql"]["image"].startswith("postgres:16")
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert setting(services["temporal"], "POSTGRES_SEEDS") == "postgresql"
    assert setting(services["temporal-schema"], "POSTGRES_SEEDS") == "postgresql"
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert any(container_port(p) == 8080 for p in services["temporal-ui"]["ports"])


def test_every_image_is_pinned_to_a_version(services):
    for name, service in services.items():
        assert PINNED.match(service["image"]), f"{name}: {service['image']} is not pinned"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert base and PINNED.match(base.group(1)) and re.search(r":\d+\.\d+\.\d+", base.group(1))


def test_fitnest_services_share_one_image_built_from_deploy_dockerfile(services):
    images = {services[name]["image"] for name in FITNEST_SERVICES}
    assert len(images) == 1
    for name in FITNEST_SERVICES:
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    assert services["worker"].get("command") is None  # the image's default: the worker
    dockerfile = (ROOT / services["worker"]["build"]["dockerfile"]).read_text()
    assert 'CMD ["python", "-m", "workers.worker"]' in dockerfile
    assert services["ui"]["command"] == ["fitnest", "ui"]
    assert services["codec-server"]["command"] == ["fitnest", "codec-server"]
    assert services["keyring"]["command"] == ["fitnest", "keys", "init"]


def test_fitnest_services_point_at_one_cluster_namespace_and_task_queue(services):
    setup = services["temporal-setup"]
    for name in FITNEST_SERVICES:
        env = services[name]
        host, port = setting(env, "FITNEST_TEMPORAL_ADDRESS").split(":")
        assert host in services and port == "7233"
        assert setting(env, "FITNEST_NAMESPACE") == setting(setup, "FITNEST_NAMESPACE")
        assert setting(env, "FITNEST_TASK_QUEUE") == TASK_QUEUE
        assert setting(env, "FITNEST_KEY_FILE").startswith("/app/keys/")
    assert setting(setup, "TEMPORAL_ADDRESS") == "temporal:7233"


def test_every_fitnest_variable_is_a_setting(services):
    fields = {name.upper() for name in Settings.model_fields}
    for name in FITNEST_SERVICES:
        for key in environment(services[name]):
            if key.startswith("FITNEST_"):
                assert key.removeprefix("FITNEST_") in fields, f"{name}.{key} is no setting"


def test_published_ports_are_the_settings_defaults_on_localhost_only(services):
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    ui, codec, worker = services["ui"], services["codec-server"], services["worker"]
    assert int(setting(ui, "FITNEST_UI_PORT")) == defaults.ui_port  # type: ignore[attr-defined]
    assert [container_port(p) for p in ui["ports"]] == [defaults.ui_port]  # type: ignore[attr-defined]
    assert int(setting(codec, "FITNEST_CODEC_PORT")) == defaults.codec_port  # type: ignore[attr-defined]
    assert [container_port(p) for p in codec["ports"]] == [defaults.codec_port]  # type: ignore[attr-defined]
    assert int(setting(worker, "FITNEST_METRICS_PORT")) == defaults.metrics_port
    assert [int(p) for p in worker["expose"]] == [defaults.metrics_port]
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} widely"


def test_workers_scale_and_stop_gracefully(services):
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    grace = float(setting(worker, "FITNEST_GRACEFUL_SHUTDOWN_SECONDS"))
    assert 0 < grace < int(worker["stop_grace_period"].removesuffix("s"))
    assert setting(worker, "FITNEST_METRICS_HOST") == "0.0.0.0"
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (target,) = [c for job in prometheus["scrape_configs"] for c in job["dns_sd_configs"]]
    assert target["names"] == ["worker"] and target["port"] == Settings().metrics_port


def test_services_start_in_order(services):
    def after(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name]["depends_on"].items()}

    assert after("temporal-schema") == {"postgresql": "service_healthy"}
    assert after("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert after("temporal-setup") == {"temporal": "service_healthy"}
    assert after("ledger-db") == {"postgresql": "service_healthy"}
    assert after("worker") == {
        "temporal": "service_healthy",
        "ledger-db": "service_completed_successfully",
        "temporal-setup": "service_completed_successfully",
        "keyring": "service_completed_successfully",
        "seal-keyring": "service_completed_successfully",
    }
    assert after("codec-server") == {"keyring": "service_completed_successfully"}
    for name in ("postgresql", "temporal", "worker"):
        assert services[name]["healthcheck"]["test"], name
    healthcheck = services["worker"]["healthcheck"]["test"]
    assert (ROOT / "deploy" / Path(healthcheck[-1]).name).is_file()
    for one_shot in ("temporal-schema", "temporal-setup", "keyring", "ledger-db"):
        assert services[one_shot]["restart"] == "no"


def test_setup_registers_exactly_the_search_attributes_the_code_declares(services):
    setup = services["temporal-setup"]
    pairs = setting(setup, "FITNEST_SEARCH_ATTRIBUTES").split()
    declared = dict(pair.split("=", 1) for pair in pairs)
    assert declared == {key.name: CLI_TYPES[key.indexed_value_type.name] for key in ALL}
    script = setup["entrypoint"][-1]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in setup["volumes"]}
    assert (ROOT / mounts[script]).is_file()


def test_web_ui_decodes_through_the_codec_server_from_an_allowed_origin(services):
    ui, codec = services["temporal-ui"], services["codec-server"]
    assert FROM_ENVIRONMENT.match(setting(ui, "TEMPORAL_CODEC_ENDPOINT"))
    host_port = str(ui["ports"][0]).split(":")[1]
    origins = setting(codec, "FITNEST_CODEC_ALLOWED_ORIGINS").split(",")
    assert f"http://localhost:{host_port}" in origins


def test_compose_commits_no_secret_values(services):
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and value is not None:
                assert FROM_ENVIRONMENT.match(value), f"{name}.{key} has a value in the file"


def test_the_keyring_lives_in_a_volume_only_its_job_may_write(services):
    for name in FITNEST_SERVICES - {"seal-keyring"}:  # which needs no payload key
        mounts = [m for m in services[name]["volumes"] if m.startswith("fitnest-keys:")]
        assert mounts == (
            ["fitnest-keys:/app/keys"] if name == "keyring" else ["fitnest-keys:/app/keys:ro"]
        ), name


def test_every_host_path_the_compose_file_mounts_exists(services):
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_only_workers_hold_the_seal_keyring(services):
    """The seal keys make internal messages unforgeable only while no client holds them."""
    holders = {
        name
        for name, service in services.items()
        if any(str(v).startswith("fitnest-seal-keys:") for v in service.get("volumes", []))
    }
    assert holders == {"worker", "seal-keyring"}
    assert setting(services["worker"], "FITNEST_SEAL_KEY_FILE").startswith("/app/seal/")
    assert services["seal-keyring"]["command"] == ["fitnest", "keys", "init", "--seal"]


def test_every_worker_replica_shares_the_ledger_in_its_own_postgresql_database(services):
    """Replicas on different hosts share no volume: the ledger must be the database."""
    worker, job = services["worker"], services["ledger-db"]
    env = environment(worker)
    assert "FITNEST_LEDGER_DIR" not in env
    url = conninfo_to_dict(setting(worker, "FITNEST_LEDGER_URL"))
    assert "password" not in url  # it comes from FITNEST_LEDGER_PASSWORD, from the environment
    assert url["host"] == "postgresql" and url["host"] in services
    assert url["user"] == url["dbname"] == setting(job, "LEDGER_DB_USER")
    assert url["user"] != setting(services["postgresql"], "POSTGRES_USER")  # its own user
    assert setting(worker, "FITNEST_LEDGER_PASSWORD") == setting(job, "LEDGER_DB_PASSWORD")
    assert FROM_ENVIRONMENT.match(setting(worker, "FITNEST_LEDGER_PASSWORD"))
    assert job["image"] == services["postgresql"]["image"]
    assert setting(job, "PGHOST") == "postgresql"
    mounts = {m.split(":")[1]: m.split(":")[0] for m in job["volumes"]}
    assert (ROOT / mounts[job["entrypoint"][-1]]).is_file()


def test_a_worker_that_dies_is_restarted_and_its_health_is_checked(services):
    worker = services["worker"]
    assert worker["restart"] == "unless-stopped"
    assert worker["healthcheck"]["test"][0] == "CMD"
    assert int(worker["healthcheck"]["retries"]) >= 1
