"""A worker per test on the shared time-skipping server, on its own task queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from negotiation.models import NegotiationRequest
from starters import client as api
from tests.workflows.harness import Negotiation
from workers.settings import Settings
from workers.worker import build_worker

Starter = Callable[[NegotiationRequest], Awaitable[Negotiation]]


def worker_settings(tmp_path: Path) -> Settings:
    """Settings for a test worker: notifications to an outbox in the test's folder."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        outbox_dir=tmp_path / "outbox",
        ledger_dir=tmp_path / "ledger",
    )


@pytest.fixture
async def start(ts_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Starter]:
    """Start negotiations on the time-skipping server, served by a fresh worker."""
    settings = worker_settings(tmp_path)
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"

    async def starter(request: NegotiationRequest) -> Negotiation:
        # The time-skipping server's clock runs ahead once any test has skipped time: keep the
        # request's deadline as far from the server's "now" as the test meant it to be.
        ahead = await ts_env.get_current_time() - datetime.now(UTC)
        if ahead > timedelta(minutes=1):
            data = request.model_dump()
            data["mandate"]["deadline"] = request.mandate.deadline + ahead
            request = NegotiationRequest.model_validate(data)
        receipt = await api.start_negotiation(ts_env.client, request, task_queue=task_queue)
        assert receipt.started
        return Negotiation(ts_env.client, request, settings.outbox_dir or tmp_path, ts_env)

    async with build_worker(ts_env.client, settings, task_queue=task_queue):
        yield starter
    # Whatever the test left open ends with its own time-skipping server (see ts_env).
