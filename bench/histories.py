"""History events per workflow, following continue-as-new back to the first run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from negotiation.models import Movement

Run = list[HistoryEvent]


async def runs_of(client: Client, workflow_id: str, run_id: str | None = None) -> list[Run]:
    """Every run of ``workflow_id`` back from ``run_id`` (the latest when None), latest first,
    following continue-as-new; ``[]`` when there is no such workflow."""
    runs: list[Run] = []
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            events = [event async for event in handle.fetch_history_events()]
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND and not runs:
                return []
            raise
        runs.append(events)
        started = events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return runs
        run_id = started.continued_execution_run_id


def type_name(event: HistoryEvent) -> str:
    """``WorkflowTaskCompleted`` for ``EVENT_TYPE_WORKFLOW_TASK_COMPLETED``."""
    raw = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in raw.split("_"))


def run_bytes(run: Run) -> int:
    """The serialized size of one run's history."""
    return History(events=run).ByteSize()


@dataclass
class Tally:
    """Events of some workflows: how many, of which types, how many workflow tasks."""

    events: int = 0
    workflow_tasks: int = 0
    by_type: Counter[str] = field(default_factory=Counter)

    def add(self, events: list[HistoryEvent]) -> None:
        """Count ``events`` in."""
        self.events += len(events)
        for event in events:
            self.by_type[type_name(event)] += 1
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                self.workflow_tasks += 1


async def negotiation_runs(client: Client, negotiation_id: str) -> dict[str, list[Run]]:
    """The runs of the negotiation workflow and of each movement it played, by name.

    A movement may run more than once under its id (the one-hop path starts development anew
    when its history grows long; release 4 continued it as new): every run is counted, each once.
    """
    parents = await runs_of(client, negotiation_id)
    found = {"negotiation": parents}
    started: dict[str, list[str]] = {}
    for parent in reversed(parents):
        for event in parent:
            if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                execution = (
                    event.child_workflow_execution_started_event_attributes.workflow_execution
                )
                started.setdefault(execution.workflow_id, []).append(execution.run_id)
    for movement in Movement:
        workflow_id = f"{negotiation_id}/{movement.value}"
        runs: dict[str, Run] = {}
        for run_id in [None, *started.get(workflow_id, [])]:
            for run in await runs_of(client, workflow_id, run_id):
                runs.setdefault(_run_id(run), run)
        if runs:
            found[movement.value] = list(runs.values())
    return found


def _run_id(run: Run) -> str:
    """The run's own id, as its first event recorded it."""
    return str(run[0].workflow_execution_started_event_attributes.original_execution_run_id)


def development_window(parents: list[Run], negotiation_id: str) -> Run:
    """The parent's events (every run) from starting the development movement to its completion,
    each time it was started.

    What the parent spends on the rounds: the messages it forwards, the news it takes in, the
    fresh development runs it starts. Empty when the negotiation played no development.
    """
    child = f"{negotiation_id}/{Movement.DEVELOPMENT.value}"
    window: Run = []
    for parent in reversed(parents):
        start: int | None = None
        for index, event in enumerate(parent):
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                if (
                    event.start_child_workflow_execution_initiated_event_attributes.workflow_id
                    == child
                ):
                    start = index
            elif start is not None and kind in _CHILD_ENDS:
                attributes = getattr(event, _CHILD_ENDS[kind])
                if attributes.workflow_execution.workflow_id == child:
                    window += parent[start : index + 1]
                    start = None
        if start is not None:
            window += parent[start:]
    return window


_CHILD_ENDS = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: (
        "child_workflow_execution_completed_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: (
        "child_workflow_execution_failed_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: (
        "child_workflow_execution_canceled_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: (
        "child_workflow_execution_terminated_event_attributes"
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: (
        "child_workflow_execution_timed_out_event_attributes"
    ),
}
