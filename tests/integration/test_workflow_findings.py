"""Workflow behaviour found wrong while playing negotiations through ``fitnest``.

Each test states the expected behaviour and fails until the workflow is fixed; the reason is in
its docstring and its failure message.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from negotiation.models import NegotiationResult, Outcome
from tests.integration.fitnest_cli import RESPONSES, Fitnest

pytestmark = pytest.mark.integration


async def test_cancelling_during_the_retrospective_keeps_the_outcome_and_the_result(
    fitnest: Fitnest, dev_env: WorkflowEnvironment
) -> None:
    """A negotiation that has ended stays open for its retrospective (7 days by default). An
    operator who cancels it then (Web UI, ``temporal workflow cancel``, any client; ``fitnest
    cancel`` refuses) must not lose what it decided: the workflow should end the retrospective
    and return its result, KPIs included.

    Today ``NegotiationWorkflow.run`` catches ``CancelledError`` only around the movements; the
    one raised in ``_retrospective`` escapes, the execution ends *Canceled* and ``result()``
    raises, so the KPIs of a finished negotiation are gone and ``fitnest list`` shows it as
    canceled.
    """
    nid, path = fitnest.request("automated_renewal.json", "retro-cancel")
    await fitnest.ok("start", path)
    await fitnest.ok("respond", nid, RESPONSES / "reject.json")
    s = await fitnest.until(nid, lambda s: s.retrospective_until is not None, "opened its retro")
    assert s.outcome == Outcome.REJECTED
    handle = dev_env.client.get_workflow_handle(nid, result_type=NegotiationResult)

    await handle.cancel()

    try:
        result = await asyncio.wait_for(handle.result(), 20)
    except WorkflowFailureError as err:
        status = (await handle.describe()).status
        pytest.fail(
            f"cancelling {nid} during its retrospective lost its result: the execution is "
            f"{status.name if status else '?'} and result() raised {err.cause!r}"
        )
    assert result.outcome == Outcome.REJECTED
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert (await fitnest.status(nid)).outcome == Outcome.REJECTED
