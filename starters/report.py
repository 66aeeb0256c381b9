"""Read the results of closed negotiations from Temporal, for ``fitnest report``.

The visibility store says which negotiations closed; each one's result (with its KPIs) comes
from its own history through the client. Nothing is copied aside, so the report is always what
Temporal holds.

Only negotiations whose workflow has *completed* count: one that has an outcome but still waits
for its retrospective is running, and joins the report when its window closes. ``since`` and
``until`` filter on that close time (Temporal's ``CloseTime``), not on the business close.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from temporalio.client import Client

from negotiation.models import DealType, NegotiationResult, PlaybookName
from workflows import search_attributes as sa

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
) -> str:
    """The visibility query for completed negotiations matching the filters.

    Every value is checked (playbook and deal type against their enums, the task queue against a
    strict pattern) or formatted here (dates) before it enters the query.
    Raises ReportFilterError for a value that cannot be used.
    """
    clauses = ["WorkflowType = 'NegotiationWorkflow'", "ExecutionStatus = 'Completed'"]
    if playbook is not None:
        clauses.append(f"{sa.PLAYBOOK.name} = '{_enum_value(PlaybookName, playbook, 'playbook')}'")
    if deal_type is not None:
        clauses.append(f"{sa.DEAL_TYPE.name} = '{_enum_value(DealType, deal_type, 'deal type')}'")
    if since is not None and until is not None and _utc(since) >= _utc(until):
        raise ReportFilterError(
            f"since ({_rfc3339(since)}) must be before until ({_rfc3339(until)})"
        )
    if since is not None:
        clauses.append(f"CloseTime >= '{_rfc3339(since)}'")
    if until is not None:
        clauses.append(f"CloseTime < '{_rfc3339(until)}'")
    if task_queue is not None:
        if not _TASK_QUEUE.fullmatch(task_queue):
            raise ReportFilterError(
                f"task queue {task_queue!r} is not a plain name "
                "(letters, digits and . _ : / @ -, at most 200)"
            )
        clauses.append(f"TaskQueue = '{task_queue}'")
    return " AND ".join(clauses)


async def collect_results(
    client: Client,
    *,
    playbook: str | None = None,
    deal_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    task_queue: str | None = None,
    limit: int = 1000,
) -> list[NegotiationResult]:
    """The results of up to ``limit`` completed negotiations matching the filters, newest first.

    Visibility is eventually consistent: a negotiation that completed a moment ago may be missing.
    Raises ReportFilterError for a filter that cannot be used, before anything is asked.
    """
    if limit < 1:
        raise ReportFilterError("limit must be at least 1")
    query = build_query(
        playbook=playbook, deal_type=deal_type, since=since, until=until, task_queue=task_queue
    )
    executions = [wf async for wf in client.list_workflows(query, limit=limit)]
    gate = asyncio.Semaphore(CONCURRENT_FETCHES)

    async def fetch(workflow_id: str, run_id: str) -> NegotiationResult:
        async with gate:
            handle = client.get_workflow_handle(
                workflow_id, run_id=run_id, result_type=NegotiationResult
            )
            return await handle.result()

    return list(await asyncio.gather(*(fetch(wf.id, wf.run_id) for wf in executions)))
