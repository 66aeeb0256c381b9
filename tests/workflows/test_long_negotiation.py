"""A negotiation of hundreds of rounds keeps the development movement's runs small."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from negotiation.models import Outcome
from tests.workflows.harness import make_request, terms

ROUNDS = 500


async def _runs(client, workflow_id: str) -> list[int]:
    """History length of every run of a workflow, newest first, following continue-as-new back."""
    lengths = []
    run_id: str | None = None
    while True:
        events = [
            e
            async for e in client.get_workflow_handle(
                workflow_id, run_id=run_id
            ).fetch_history_events()
        ]
        lengths.append(len(events))
        started = events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return lengths
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

    runs = await _runs(n.client, f"{n.id}/development")
    assert len(runs) > 2, runs
    assert max(runs) < 2_500, runs  # each run stays near the movement's history budget
    parent = [e async for e in n.client.get_workflow_handle(n.id).fetch_history_events()]
    assert parent[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    print(f"development runs: {runs}; negotiation history: {len(parent)} events")
    assert s.round == ROUNDS
