"""The product's metrics measure workflow time: an answer ten hours after the ask shows as such.

The worker here uses its own temporalio Runtime with a Prometheus endpoint on a free port, as
``workers.worker`` does, while the test drives the negotiation through the time-skipping client.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from negotiation.models import Outcome
from starters import client as api
from tests.workflows.conftest import worker_settings
from tests.workflows.harness import Negotiation, make_request, terms
from workers import telemetry
from workers.devserver import free_port
from workers.worker import build_worker
from workflows import metrics

HOUR = timedelta(hours=1)


def scrape(port: int) -> list[str]:
    """The sample lines of the product's metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return [
            line for line in response.read().decode().splitlines() if line.startswith("fitnest_")
        ]


@pytest.fixture
async def measured(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[Negotiation, int]]:
    """A conductor-led negotiation waiting on its deal owner, served by a worker with metrics."""
    settings = worker_settings(tmp_path).model_copy(update={"metrics_port": free_port()})
    client = await Client.connect(
        ts_env.client.service_client.config.target_host,
        namespace=ts_env.client.namespace,
        data_converter=ts_env.client.data_converter,
        runtime=telemetry.runtime(settings),
    )
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    # The test server's clock runs ahead once a test skipped time: keep a 90-day deadline.
    request = make_request("conductor_led", now=await ts_env.get_current_time())
    async with build_worker(client, settings, task_queue=queue):
        await api.start_negotiation(ts_env.client, request, task_queue=queue)
        n = Negotiation(ts_env.client, request, settings.outbox_dir or tmp_path, ts_env)
        await n.until(lambda s: s.our_terms is not None)
        await n.respond("counter", terms(50000, 10, 45))
        await n.pending("deal_owner")
        yield n, settings.metrics_port
    # Whatever the test left open ends with its module's time-skipping server (see ts_env).


async def test_escalation_and_decision_wait_are_measured_in_workflow_time(
    measured: tuple[Negotiation, int], ts_env: WorkflowEnvironment
) -> None:
    n, port = measured
    await ts_env.sleep(49 * HOUR)  # twice the 24 h due time: the deal owner's request escalates
    escalated = await n.until(lambda s: bool(s.escalations))
    await ts_env.sleep(10 * HOUR)  # the executive, asked at the escalation, answers 10 h later
    await n.decide(escalated.pending_decisions[0].request_id, "eve", "reject")
    assert (await n.until(lambda s: s.outcome is not None)).outcome == Outcome.WALKED_AWAY

    lines = scrape(port)
    assert any(
        line.startswith(f"{metrics.ESCALATIONS}{{")
        and 'from_role="deal_owner"' in line
        and 'to_role="executive"' in line
        and line.endswith(" 1")
        for line in lines
    ), lines

    def waited_within(le: str) -> str:
        (line,) = [
            x
            for x in lines
            if x.startswith(f"{metrics.DECISION_WAIT}_bucket{{")
            and 'role="executive"' in x
            and f'le="{le}"' in x
        ]
        return line.rsplit(" ", 1)[1]

    # About 10 hours of workflow time (a few real seconds): above the 8 h bucket, within 24 h.
    assert waited_within("28800") == "0"
    assert waited_within("86400") == "1"
    closed = [x for x in lines if x.startswith(f"{metrics.CLOSED}{{")]
    assert any('outcome="walked_away"' in x and 'playbook="conductor_led"' in x for x in closed)
