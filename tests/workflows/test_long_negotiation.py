"""A negotiation of hundreds of rounds keeps every run small: the development movement hands
back to go on in a fresh run, and the negotiation itself stays short."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from negotiation.models import Outcome
from tests.workflows.harness import make_request, terms

ROUNDS = 500


async def _history(client, workflow_id: str, run_id: str | None = None) -> list:
    return [
        e
        async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()
    ]


async def _runs(client, negotiation_id: str) -> tuple[list[int], list[int]]:
    """History length of every run of the negotiation (following continue-as-new back) and of
    every run of its development movement (each started by one of those runs)."""
    parents, development = [], []
    run_id: str | None = None
    while True:
        events = await _history(client, negotiation_id, run_id)
        parents.append(len(events))
        for e in events:
            if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                child = e.child_workflow_execution_started_event_attributes.workflow_execution
                if child.workflow_id.endswith("/development"):
                    development.append(len(await _history(client, child.workflow_id, child.run_id)))
        started = events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return parents, development
        run_id = started.continued_execution_run_id


async def test_a_500_round_negotiation_continues_as_new_and_processes_every_message_once(start):
    request = make_request("automated", mandate__max_rounds=ROUNDS)
    n = await start(request)
    await n.until(lambda s: s.our_terms is not None)
    stubborn = terms(50000, 10, 45)  # within the walk-away, never at target
    for _ in range(ROUNDS):
        await n.respond("counter", stubborn)
    s = await n.until(lambda s: s.movement.value == "closure", timeout=180)
    await n.respond("sign")
    result = await n.result()

    assert result.outcome == Outcome.AGREED
    assert result.kpis.rounds == ROUNDS
    assert (
        result.agreed_terms is not None and result.agreed_terms.terms == stubborn
    )  # accepted on the last round
    assert result.kpis.automated_responses == ROUNDS
    versions = [o.version for o in result.status.offers]
    assert versions == list(range(1, 2 * ROUNDS + 1))  # every offer once, none skipped or repeated
    assert result.status.rejected_messages == []

    parents, runs = await _runs(n.client, n.id)
    assert len(runs) > 2, runs  # development handed back and went on in fresh runs
    assert max(runs) < 2_500, runs  # each run stays near the movement's history budget
    assert max(parents) < 2_500, parents
    print(f"development runs: {runs}; negotiation runs: {parents}")
    assert s.round == ROUNDS
