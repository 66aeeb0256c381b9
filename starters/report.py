"""Read the results of closed negotiations from Temporal, for ``fitnest report``.

The visibility store says which negotiations closed; each one's result (with its KPIs) comes
from its own history through the client. Nothing is copied aside, so the report is always what
Temporal holds.

A negotiation counts from its outcome on. While its retrospective window is open its workflow
still runs: its result is read with the ``result_so_far`` query (marked ``provisional``, since
satisfaction answers may still arrive), which needs a worker. Once the workflow has completed,
its result comes from its history. One that cannot be read (no worker answers, its query fails,
a payload does not open with this keyring or is not a result) is left out, named with the
reason, and logged: it never takes the report down.
``since`` and ``until`` filter on the close: Temporal's ``CloseTime`` for completed workflows,
the business close (``status.closed_at``) for those still in their window.
"""

from __future__ import annotations

import asyncio
import functools
import re
from datetime import UTC, datetime

import structlog
from pydantic import BaseModel, Field
from temporalio.client import Client

from negotiation.models import DealType, NegotiationResult, PlaybookName
from negotiation.report import LeftOut
from starters.client import left_out
from workflows import search_attributes as sa

log = structlog.get_logger(__name__)

#: Results fetched at once: enough to hide round trips, few enough to spare the frontend.
CONCURRENT_FETCHES = 16

#: Task queue names the query accepts: anything else could break out of the quoted literal.
_TASK_QUEUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}")


class ReportFilterError(ValueError):
    """A report filter that cannot be used; the message says which values are valid."""


def _enum_value(kind: type[PlaybookName] | type[DealType], value: str, what: str) -> str:
    try:
        return kind(value).value
    except ValueError:
        valid = ", ".join(m.value for m in kind)
        raise ReportFilterError(f"unknown {what} {value!r}; choose one of: {valid}") from None


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    """A timestamp the visibility query takes."""
    return _utc(moment).isoformat().replace("+00:00", "Z")


def build_query(
    *,
    playbook: str | None = None,
    deal_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    task_queue: str | None = None,
    in_retrospective: bool = False,
) -> str:
    """The visibility query for completed negotiations matching the filters, or with
    ``in_retrospective`` for those with an outcome whose workflow still runs (no close-time
    clauses then: the caller filters on the business close).

    Every value is checked (playbook and deal type against their enums, the task queue against a
    strict pattern) or formatted here (dates) before it enters the query.
    Raises ReportFilterError for a value that cannot be used.
    """
    clauses = ["WorkflowType = 'NegotiationWorkflow'"]
    if in_retrospective:
        clauses += ["ExecutionStatus = 'Running'", f"{sa.OUTCOME.name} IS NOT NULL"]
    else:
        clauses.append("ExecutionStatus = 'Completed'")
    if playbook is not None:
        clauses.append(f"{sa.PLAYBOOK.name} = '{_enum_value(PlaybookName, playbook, 'playbook')}'")
    if deal_type is not None:
        clauses.append(f"{sa.DEAL_TYPE.name} = '{_enum_value(DealType, deal_type, 'deal type')}'")
    if since is not None and until is not None and _utc(since) >= _utc(until):
        raise ReportFilterError(
            f"since ({_rfc3339(since)}) must be before until ({_rfc3339(until)})"
        )
    if since is not None and not in_retrospective:
        clauses.append(f"CloseTime >= '{_rfc3339(since)}'")
    if until is not None and not in_retrospective:
        clauses.append(f"CloseTime < '{_rfc3339(until)}'")
    if task_queue is not None:
        if not _TASK_QUEUE.fullmatch(task_queue):
            raise ReportFilterError(
                f"task queue {task_queue!r} is not a plain name "
                "(letters, digits and . _ : / @ -, at most 200)"
            )
        clauses.append(f"TaskQueue = '{task_queue}'")
    return " AND ".join(clauses)


class CollectedResults(BaseModel):
    """What :func:`collect_results` read, and what it had to leave out."""

    results: list[NegotiationResult] = Field(default_factory=list)
    left_out: list[LeftOut] = Field(default_factory=list)


async def collect_results(
    client: Client,
    *,
    playbook: str | None = None,
    deal_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    task_queue: str | None = None,
    limit: int = 1000,
) -> CollectedResults:
    """The results of up to ``limit`` negotiations with an outcome matching the filters: those
    still in their retrospective window first (``provisional``), then completed ones, newest
    first; and the negotiations that could not be read, each with the reason.

    Visibility is eventually consistent: a negotiation that closed a moment ago may be missing.
    Raises ReportFilterError for a filter that cannot be used, before anything is asked; a
    failure to list (Temporal down) passes.
    """
    if limit < 1:
        raise ReportFilterError("limit must be at least 1")
    query = functools.partial(
        build_query,
        playbook=playbook,
        deal_type=deal_type,
        since=since,
        until=until,
        task_queue=task_queue,
    )
    completed, open_window = query(), query(in_retrospective=True)
    gate = asyncio.Semaphore(CONCURRENT_FETCHES)

    async def so_far(workflow_id: str, run_id: str) -> NegotiationResult | LeftOut | None:
        async with gate:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            try:
                return await handle.query("result_so_far", result_type=NegotiationResult | None)  # type: ignore[arg-type]
            except Exception as err:  # one negotiation never takes the report down
                return left_out(workflow_id, err, "report")

    async def final(workflow_id: str, run_id: str) -> NegotiationResult | LeftOut:
        async with gate:
            handle = client.get_workflow_handle(
                workflow_id, run_id=run_id, result_type=NegotiationResult
            )
            try:
                return await handle.result()
            except Exception as err:  # one negotiation never takes the report down
                return left_out(workflow_id, err, "report")

    def closed_within(result: NegotiationResult) -> bool:
        closed = result.status.closed_at
        return closed is not None and (
            (since is None or closed >= _utc(since)) and (until is None or closed < _utc(until))
        )

    running = [wf async for wf in client.list_workflows(open_window, limit=limit)]
    read = await asyncio.gather(*(so_far(wf.id, wf.run_id) for wf in running))
    provisional = [r for r in read if isinstance(r, NegotiationResult) and closed_within(r)]
    rest = limit - len(provisional)
    executions = [wf async for wf in client.list_workflows(completed, limit=rest)] if rest else []
    finals = await asyncio.gather(*(final(wf.id, wf.run_id) for wf in executions))
    return CollectedResults(
        results=provisional + [r for r in finals if isinstance(r, NegotiationResult)],
        left_out=[r for r in (*read, *finals) if isinstance(r, LeftOut)],
    )
