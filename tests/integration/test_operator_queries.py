"""Every operators' view the README documents is a query the server accepts and answers right."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from negotiation.models import Movement, Outcome
from starters import client as api
from tests.workflows.harness import Negotiation, make_request, terms
from workers.settings import Settings
from workers.worker import build_worker

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| (?P<view>[^|`]+?) \| `(?P<query>[^`]+)` \|$", re.MULTILINE)
DATE = re.compile(r"'\d{4}-\d{2}-\d{2}T[^']*'")

#: Which of the three negotiations below each documented view must list.
EXPECTED = {
    "Open negotiations": {"conductor", "ensemble"},
    "Waiting on us": {"conductor", "ensemble"},
    "Awaiting finance": {"ensemble"},
    "Awaiting the deal owner": {"conductor", "ensemble"},
    "Stuck in development": {"conductor", "ensemble"},
    "Overdue": {"conductor", "ensemble"},
    "Closed without agreement": {"closed"},
    "Conductor-led in development": {"conductor", "closed"},
    "Large deals still open": {"conductor"},
    "One counterparty": {"conductor", "closed"},
    "Failing workflow tasks": {"buggy"},
}


@workflow.defn(name="BuggyWorkflow")
class BuggyWorkflow:
    """A workflow whose code fails every task, as a bug or a broken deploy would."""

    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug in workflow code")


def documented_views() -> dict[str, str]:
    """The README's table of views: name to query."""
    section = README.read_text().split("## Operators' views in the Web UI", 1)[1]
    section = section.split("\n## ", 1)[0]
    return {m["view"]: m["query"] for m in ROW.finditer(section)}


@pytest.fixture(scope="module")
async def portfolio(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Three negotiations on their own task queue (waiting on the deal owner, on finance, closed)
    and a workflow of a type the worker does not know, whose tasks keep failing."""
    workdir = tmp_path_factory.mktemp("views")
    queue = f"views-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        outbox_dir=workdir / "outbox",
        ledger_dir=workdir / "ledger",
    )
    conductor = make_request(
        "conductor_led",
        opening_terms__total_contract_value="1500000",
        mandate__total_contract_value={"target": "1500000", "walk_away": "1200000"},
    )
    closed = make_request("conductor_led")
    ensemble = make_request(
        "collaborative_ensemble",
        counterparty={"name": "Fabrikam", "email": "buyer@fabrikam.example"},
    )
    buggy_worker = Worker(
        dev_env.client,
        task_queue=f"{queue}-buggy",
        workflows=[BuggyWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with buggy_worker, build_worker(dev_env.client, settings, task_queue=queue):
        # First: Temporal reports the failing tasks only after a few retries with backoff.
        buggy = await dev_env.client.start_workflow(
            BuggyWorkflow.run,
            id=f"buggy-{queue}",
            task_queue=f"{queue}-buggy",
            # The SDK reports a task's first failure, then lets retries time out: keep them short.
            task_timeout=timedelta(seconds=1),
        )
        started = {}
        for name, request in (("conductor", conductor), ("closed", closed), ("ensemble", ensemble)):
            await api.start_negotiation(dev_env.client, request, task_queue=queue)
            started[name] = Negotiation(dev_env.client, request, workdir / "outbox")
        await started["conductor"].respond("counter", terms("1300000", 10, 45))
        await started["closed"].respond("counter", terms("51000", 10, 45))
        await started["ensemble"].respond("counter", terms("51000", 10, 75))
        await started["conductor"].pending("deal_owner")
        await started["ensemble"].pending("finance")
        refusal = await started["closed"].pending("deal_owner")
        await started["closed"].decide(refusal.request_id, "ana", "reject")
        ended = await started["closed"].until(lambda s: s.outcome is not None)
        assert ended.outcome == Outcome.WALKED_AWAY
        yield queue, {"buggy": buggy.id} | {name: n.id for name, n in started.items()}
        for workflow_id in (buggy.id, *(n.id for n in started.values())):
            await dev_env.client.get_workflow_handle(workflow_id).terminate("test over")


def test_the_readme_documents_each_expected_view():
    assert set(documented_views()) == set(EXPECTED)


@pytest.mark.parametrize("view", sorted(EXPECTED))
async def test_documented_view_lists_the_negotiations_it_names(
    dev_env: WorkflowEnvironment, portfolio: tuple[str, dict[str, str]], view: str
) -> None:
    _, ids = portfolio
    query = documented_views()[view]
    # The README's example cut-off dates are in the past; ours includes what started just now.
    cutoff = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dated = DATE.sub(f"'{cutoff}'", query)
    ours = ", ".join(f"'{workflow_id}'" for workflow_id in ids.values())
    scoped = f"WorkflowId IN ({ours}) AND ({dated})"
    names = {workflow_id: name for name, workflow_id in ids.items()}
    found: set[str] = set()
    for _ in range(150):  # visibility is eventually consistent; failing tasks take retries
        found = {names[wf.id] async for wf in dev_env.client.list_workflows(scoped)}
        if found == EXPECTED[view]:
            break
        await asyncio.sleep(0.2)
    assert found == EXPECTED[view], scoped


async def test_every_child_activity_and_timer_carries_a_summary_for_the_web_ui(
    dev_env: WorkflowEnvironment, portfolio: tuple[str, dict[str, str]]
) -> None:
    _, ids = portfolio
    kinds = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity",
        EventType.EVENT_TYPE_TIMER_STARTED: "timer",
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "child",
    }
    seen: dict[str, int] = {"activity": 0, "timer": 0, "child": 0}
    for negotiation_id in (ids[name] for name in ("conductor", "ensemble", "closed")):
        workflow_ids = [negotiation_id] + [f"{negotiation_id}/{m.value}" for m in Movement]
        for workflow_id in workflow_ids:
            handle = dev_env.client.get_workflow_handle(workflow_id)
            try:
                history = await handle.fetch_history()
            except RPCError:
                continue  # a movement this negotiation never reached
            for event in history.events:
                if event.event_type in kinds:
                    seen[kinds[event.event_type]] += 1
                    summary = event.user_metadata.summary.data
                    assert summary, f"{workflow_id} event {event.event_id} has no summary"
    assert all(seen.values()), seen  # each kind occurred, so the check above meant something
