"""A real worker process logs JSON with the negotiation's context and serves the product's metrics."""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from negotiation.models import NegotiationRequest, Outcome
from starters.cli import fresh_request
from starters.client import get_status, start_negotiation
from starters.simulate import SimulatedCounterparty, play
from tests.integration.processes import WorkerProcess, start_worker
from workers.client import connect
from workers.worker import WORKFLOWS
from workflows import metrics

REPO = Path(__file__).resolve().parents[2]
SUPPLIER = REPO / "examples" / "conductor_led_supplier.json"


@dataclass
class Played:
    """A worker process and the negotiation it served to its end."""

    worker: WorkerProcess
    client: Client
    request: NegotiationRequest
    outcome: str | None


@pytest.fixture(scope="module")
async def played(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Played]:
    """A conductor-led negotiation played to its outcome (with one malformed signal) by a worker."""
    worker = await start_worker(dev_env, tmp_path_factory.mktemp("telemetry"))
    try:
        client = await connect(worker.settings)
        template = NegotiationRequest.model_validate_json(SUPPLIER.read_text())
        request = fresh_request(template, 0, datetime.now(UTC))
        await start_negotiation(client, request, task_queue=worker.settings.task_queue)
        handle = client.get_workflow_handle(request.negotiation_id)
        await handle.signal("counterparty_response", {"message_id": "m-bad", "action": "shrug"})
        result = await play(
            client,
            request.negotiation_id,
            SimulatedCounterparty(),
            approve=True,
            poll_seconds=0.2,
            max_seconds=60,
        )
        yield Played(worker, client, request, result.outcome)
    finally:
        await worker.stop()


def scrape(url: str) -> str:
    """The Prometheus text the endpoint serves."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of metric ``name``, keyed by their labels."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            found[labels] = float(match.group(2))
    return found


def log_events(worker: WorkerProcess) -> list[dict[str, Any]]:
    """Every line the worker logged, each parsed as one JSON object (the helper's own
    ``--- start N`` markers aside)."""
    lines = worker.log_text().splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("--- ")]


async def test_worker_serves_the_product_metrics_with_their_labels(played: Played) -> None:
    assert played.outcome == Outcome.AGREED
    text = scrape(played.worker.metrics_url)

    def count(name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(v for k, v in samples(text, name).items() if wanted <= k)

    playbook = {"playbook": "conductor_led", "deal_type": played.request.deal_type.value}
    assert count(metrics.STARTED, **playbook) == 1
    assert count(metrics.CLOSED, outcome="agreed", **playbook) == 1
    rounds = await get_status(played.client, played.request.negotiation_id)
    assert count(f"{metrics.ROUNDS}_count", outcome="agreed") == 1
    assert count(f"{metrics.ROUNDS}_sum", outcome="agreed") == rounds.round
    # The simulated deal owner answered every counteroffer and the signature.
    decided = [d for d in rounds.decisions if d.approver != "policy"]
    assert decided and count(f"{metrics.DECISION_WAIT}_count", role="deal_owner") == sum(
        1 for d in decided if d.role.value == "deal_owner"
    )
    # Buckets fit negotiations: decisions take minutes to days, not the SDK's seconds.
    waits = samples(text, f"{metrics.DECISION_WAIT}_bucket")
    assert {float(dict(k)["le"]) for k in waits} >= {60.0, 86400.0, 604800.0}
    # The SDK's own metrics share the endpoint.
    assert count("temporal_workflow_task_execution_latency_count") > 0
    assert count("temporal_activity_execution_latency_count", activity_type="send_notification") > 0


async def test_worker_logs_json_lines_with_negotiation_workflow_and_activity_context(
    played: Played,
) -> None:
    nid = played.request.negotiation_id
    events = log_events(played.worker)
    started = next(e for e in events if e["event"] == "worker.started")
    assert started["metrics"] == played.worker.metrics_url
    assert all({"timestamp", "level", "logger"} <= e.keys() for e in events)

    sent = [e for e in events if e["event"] == "notification.sent" and e["negotiation_id"] == nid]
    # Movements send from <id>/<movement>; the negotiation itself (checkpoints, retrospective)
    # from <id>, which may not have happened yet.
    assert {e.get("movement") for e in sent} >= {"preparation", "opening", "closure"}
    for e in sent:
        movement = e.get("movement")
        assert e["workflow_id"] == (f"{nid}/{movement}" if movement else nid)
        # Role cards go out together (one activity), everything else one by one.
        assert e["activity_type"] in ("send_notification", "send_notifications")
        assert e["attempt"] == 1
        assert e["workflow_run_id"] and e["workflow_type"] and e["activity_id"]

    rejected = [e for e in events if e["event"] == "message rejected"]
    assert len(rejected) == 1
    assert rejected[0]["negotiation_id"] == rejected[0]["workflow_id"] == nid
    assert rejected[0]["workflow_type"] == "NegotiationWorkflow" and rejected[0]["run_id"]
    assert rejected[0]["logger"] == "temporalio.workflow"
    assert rejected[0]["movement"] == "preparation"  # the signal came right after the start


async def test_worker_logs_no_deal_terms(played: Played) -> None:
    terms = played.request.opening_terms
    mandate = played.request.mandate.total_contract_value
    text = played.worker.log_text()
    assert "notification.sent" in text  # the log is not empty, so its silence means something
    for secret in (terms.total_contract_value, mandate.target, mandate.walk_away):
        assert str(secret) not in text and f"{secret:,}" not in text


async def test_workflow_logs_are_silent_while_a_worker_replays_history(played: Played) -> None:
    history = await played.client.get_workflow_handle(played.request.negotiation_id).fetch_history()
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=played.client.data_converter)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    async def replay_logs(log_during_replay: bool) -> list[str]:
        records.clear()
        workflow.logger.log_during_replay = log_during_replay
        try:
            await replayer.replay_workflow(history)
        finally:
            workflow.logger.log_during_replay = False
        return [r.getMessage() for r in records]

    handler = Keep(logging.DEBUG)
    workflow_log = logging.getLogger("temporalio.workflow")
    workflow_log.addHandler(handler)
    level = workflow_log.level
    workflow_log.setLevel(logging.DEBUG)
    try:
        silent = await replay_logs(log_during_replay=False)
        # The same replay with the guard off reaches the line the live run logged.
        reached = await replay_logs(log_during_replay=True)
    finally:
        workflow_log.removeHandler(handler)
        workflow_log.setLevel(level)

    assert "message rejected" in played.worker.log_text()
    assert any(m.startswith("message rejected") for m in reached)
    assert silent == []
