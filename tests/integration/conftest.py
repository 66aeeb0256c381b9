"""One worker per test module, in this process, on the shared dev server; the CLI runs beside it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.integration.fitnest_cli import Fitnest
from workers.settings import Settings
from workers.worker import build_worker


@pytest.fixture(scope="module")
async def fitnest(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fitnest]:
    """The ``fitnest`` command against the dev server, with a worker serving its task queue.

    The task queue is unique to the test module, so only this module's worker serves the
    negotiations it starts; notifications go to an outbox in the module's temporary folder.
    """
    workdir = tmp_path_factory.mktemp("fitnest")
    address = dev_env.client.service_client.config.target_host
    task_queue = f"it-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=address,
        task_queue=task_queue,
        outbox_dir=workdir / "outbox",
        ledger_dir=workdir / "ledger",
    )
    async with build_worker(dev_env.client, settings, task_queue=task_queue):
        yield Fitnest(dev_env.client, task_queue, workdir, workdir / "outbox")
