"""The real dev server: attributes registered, state kept across a restart, clear refusals.

Also runs the two scripts docker compose uses (search attribute registration, worker
healthcheck) against a real server, since no Docker engine runs here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from workers.devserver import (
    DevServer,
    DevServerError,
    DevServerSettings,
    PortsInUseError,
    ensure_search_attributes,
    find_executable,
    free_port,
    start,
)
from workflows.search_attributes import ALL, CLI_TYPES

ROOT = Path(__file__).resolve().parents[2]


def settings_for(data_dir: Path, *, headless: bool = True) -> DevServerSettings:
    return DevServerSettings(
        data_dir=data_dir,
        port=free_port("localhost"),
        ui_port=free_port("localhost"),
        headless=headless,
    )


async def registered(client: Client, namespace: str = "default") -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


def expected(keys: tuple[SearchAttributeKey, ...] = ALL) -> dict[str, int]:
    return {key.name: int(key.indexed_value_type) for key in keys}


def registered_subset(found: dict[str, int], wanted: dict[str, int]) -> bool:
    return {name: found.get(name) for name in wanted} == wanted


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """One dev server, as `make up` runs it (with the Web UI), for the checks that keep it up."""
    running = await start(settings_for(tmp_path_factory.mktemp("devserver"), headless=False))
    yield running
    assert running.stop() == 0


async def test_state_and_search_attributes_survive_a_restart(tmp_path):
    first = settings_for(tmp_path)
    # The first start knows one attribute less, as an older checkout would have.
    server = await start(first, search_attributes=ALL[:-1])
    try:
        assert registered_subset(await registered(server.client), expected(ALL[:-1]))
        workflow_id = f"parked-{uuid.uuid4()}"
        await server.client.start_workflow(
            "NoWorkerRunsThis", id=workflow_id, task_queue="nobody-polls-this"
        )
    finally:
        assert server.stop() == 0

    # Same db file, new ports; the server ignores --search-attribute on an existing file,
    # so the missing attribute arrives through start()'s reconciliation.
    second = settings_for(tmp_path)
    server = await start(second)
    try:
        assert registered_subset(await registered(server.client), expected())
        described = await server.client.get_workflow_handle(workflow_id).describe()
        assert described.raw_description.workflow_execution_info.status == (
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
        )
    finally:
        assert server.stop() == 0


async def test_fresh_server_has_every_search_attribute_and_the_web_ui(server):
    assert registered_subset(await registered(server.client), expected())
    with urllib.request.urlopen(server.settings.ui_url, timeout=5) as page:
        assert page.status == 200


async def test_attribute_registered_with_another_type_is_refused(server):
    deal_value_as_keyword = SearchAttributeKey.for_keyword("DealValue")
    refusal = "DealValue is registered as INDEXED_VALUE_TYPE_DOUBLE"
    with pytest.raises(DevServerError, match=refusal):
        await ensure_search_attributes(server.client, "default", [deal_value_as_keyword])


async def test_second_server_on_taken_ports_is_refused(server, tmp_path):
    taken = server.settings.model_copy(update={"data_dir": tmp_path})
    with pytest.raises(PortsInUseError, match=str(server.settings.port)):
        await start(taken)


async def test_second_server_on_the_same_data_folder_is_refused(server):
    same_folder = settings_for(server.settings.data_dir)
    with pytest.raises(DevServerError, match="already using"):
        await start(same_folder)


async def test_compose_setup_script_creates_the_namespace_and_registers_each_attribute_once(
    server,
):
    namespace = f"compose-{uuid.uuid4().hex[:8]}"
    pairs = " ".join(f"{k.name}={CLI_TYPES[k.indexed_value_type.name]}" for k in ALL)
    first = await run_registration(server, namespace, pairs, retention="720h")
    assert first.returncode == 0, first.stderr
    assert f"created namespace {namespace}" in first.stdout
    described = await server.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    assert described.config.workflow_execution_retention_ttl.ToSeconds() == 720 * 3600
    assert registered_subset(await registered(server.client, namespace), expected())
    again = await run_registration(server, namespace, pairs)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already registered") == len(ALL)

    conflicting = await run_registration(server, namespace, "DealValue=Keyword")
    assert conflicting.returncode == 1
    assert "registered as Double" in conflicting.stderr


async def run_registration(
    server: DevServer, namespace: str, pairs: str, retention: str = ""
) -> subprocess.CompletedProcess[str]:
    temporal_dir = str(find_executable("temporal").parent)
    env = {
        **os.environ,
        "PATH": temporal_dir + os.pathsep + os.environ.get("PATH", ""),
        "TEMPORAL_ADDRESS": server.settings.address,
        "FITNEST_NAMESPACE": namespace,
        "FITNEST_SEARCH_ATTRIBUTES": pairs,
        "FITNEST_NAMESPACE_RETENTION": retention,
    }
    script = ROOT / "deploy" / "register-search-attributes.sh"
    return await asyncio.to_thread(
        subprocess.run, ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60
    )


@workflow.defn(name="HealthcheckProbe")
class HealthcheckProbe:
    @workflow.run
    async def run(self) -> None:
        return None


async def test_worker_healthcheck_sees_this_hosts_worker_polling(server):
    task_queue = f"probe-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        server.client,
        task_queue=task_queue,
        workflows=[HealthcheckProbe],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker:
        healthy = await wait_for(lambda: run_healthcheck(server, task_queue), returncode=0)
        assert "healthy" in healthy.stdout
    unpolled = await run_healthcheck(server, f"nobody-{task_queue}")
    assert unpolled.returncode == 1
    assert "no worker of this host polls" in unpolled.stdout


async def run_healthcheck(server: DevServer, task_queue: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FITNEST_TEMPORAL_ADDRESS": server.settings.address,
        "FITNEST_NAMESPACE": server.settings.namespace,
        "FITNEST_TASK_QUEUE": task_queue,
    }
    script = ROOT / "deploy" / "worker_healthcheck.py"
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def wait_for(run, *, returncode: int, within: timedelta = timedelta(seconds=10)):
    """Run ``run`` until it exits with ``returncode`` (a poller shows up a moment after start)."""
    deadline = asyncio.get_running_loop().time() + within.total_seconds()
    while True:
        result = await run()
        if result.returncode == returncode or asyncio.get_running_loop().time() > deadline:
            assert result.returncode == returncode, result.stdout + result.stderr
            return result
        await asyncio.sleep(0.3)
