"""What operators see in the Temporal Web UI: search attributes, details, summaries — and no deal terms."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from negotiation.models import Outcome
from starters import client as api
from tests.workflows.conftest import worker_settings
from tests.workflows.harness import Negotiation, make_request, terms
from workers.worker import build_worker
from workflows import search_attributes as sa

pytestmark = pytest.mark.integration


async def _attributes(n: Negotiation) -> dict[str, object]:
    desc = await n.client.get_workflow_handle(n.id).describe()
    return {pair.key.name: pair.value for pair in desc.typed_search_attributes}


async def test_search_attributes_details_and_summaries_tell_the_story_without_deal_terms(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
):
    caplog.set_level(logging.DEBUG)
    settings = worker_settings(tmp_path)
    queue = f"ops-{uuid.uuid4().hex[:6]}"
    request = make_request(
        "conductor_led",
        opening_terms__total_contract_value="61234.56",
        mandate__total_contract_value={"target": "61234.56", "walk_away": "48765.43"},
    )
    async with build_worker(dev_env.client, settings, task_queue=queue):
        await api.start_negotiation(dev_env.client, request, task_queue=queue)
        n = Negotiation(dev_env.client, request, tmp_path / "outbox")
        await n.respond("counter", terms("51111.11", 10, 45))
        pending = await n.pending("deal_owner")

        attrs = await _attributes(n)
        assert attrs[sa.MOVEMENT.name] == "development"
        assert attrs[sa.PLAYBOOK.name] == "conductor_led"
        assert attrs[sa.COUNTERPARTY.name] == "Northwind Traders"
        assert attrs[sa.AWAITING_DECISION.name] == ["deal_owner"]
        assert attrs[sa.DEAL_VALUE.name] == 0.0  # the standard tier's floor: a band, not the value

        child = await n.client.get_workflow_handle(f"{n.id}/development").describe()
        assert await child.static_summary() == "Development: counteroffer rounds"
        parent = await n.client.get_workflow_handle(n.id).describe()
        assert "Northwind Traders" in (await parent.static_summary() or "")
        # The Web UI's "current details" come from the built-in metadata query.
        from temporalio.api.sdk.v1 import WorkflowMetadata

        metadata = await n.client.get_workflow_handle(n.id).query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        details = metadata.current_details
        assert "Movement **development**" in details and "deal_owner (counteroffer)" in details

        # Visibility finds it by what an operator filters on (eventually consistent).
        query = f"NegotiationPlaybook = 'conductor_led' AND AwaitingDecision = 'deal_owner' AND WorkflowId = '{n.id}'"
        for _ in range(50):
            found = [wf.id async for wf in dev_env.client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.2)
        assert found == [n.id]

        await n.decide(pending.request_id, "ana", "reject")
        # The business ends here; the workflow stays open for the retrospective window.
        closed = await n.until(lambda s: s.outcome is not None)
        assert closed.outcome == Outcome.WALKED_AWAY
        assert closed.retrospective_until is not None
        attrs = await _attributes(n)
        assert attrs[sa.OUTCOME.name] == "walked_away"
        assert attrs.get(sa.AWAITING_DECISION.name, []) == []  # an empty list clears it

    # Deal terms never appear in workflow ids, search attributes or logs.
    out, err = capfd.readouterr()
    visible = " ".join([n.id, *(str(v) for v in attrs.values()), caplog.text, out, err])
    for secret in ("61234", "51111", "48765"):
        assert secret not in visible
