"""History events per workflow, following continue-as-new back to the first run."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from negotiation.models import Movement


async def events_of(client: Client, workflow_id: str) -> tuple[int, int]:
    """Events in every run of ``workflow_id`` (latest run back to the first) and the run count.

    ``(0, 0)`` when no such workflow exists (a movement the negotiation did not play).
    """
    total, runs = 0, 0
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            events = [event async for event in handle.fetch_history_events()]
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND and runs == 0:
                return 0, 0
            raise
        total += len(events)
        runs += 1
        started = events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return total, runs
        run_id = started.continued_execution_run_id


async def negotiation_events(client: Client, negotiation_id: str) -> dict[str, int]:
    """Events of the negotiation workflow and of each movement it played, by name."""
    counts = {"negotiation": (await events_of(client, negotiation_id))[0]}
    for movement in Movement:
        events, runs = await events_of(client, f"{negotiation_id}/{movement.value}")
        if runs:
            counts[movement.value] = events
    return counts
