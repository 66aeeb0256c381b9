"""The decisions waiting for someone, across negotiations, one page at a time.

The visibility store finds the negotiations awaiting a role (the ``AwaitingDecision`` search
attribute), page by page; only the negotiations on the page shown are asked for their status
(due times, the exact requests) and their request (role cards, for delegations). So a page costs
one list call and ``page_size`` status queries however many decisions are pending in all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from negotiation.models import NegotiationRequest, NegotiationStatus, PendingDecision, PlaybookName
from starters.client import NegotiationError, get_status, left_out
from ui.negotiations import RequestCache
from workflows import search_attributes as sa

#: Status queries in flight at once for one page.
CONCURRENT_QUERIES = 16


class InboxFilterError(ValueError):
    """A filter or page token that cannot be used; the message says why."""


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox is narrowed to."""

    roles: Sequence[str] = ()
    playbook: str | None = None
    counterparty: str | None = None
    #: The task queue the UI serves: negotiations of other deployments stay out.
    task_queue: str | None = None

    def conditions(self) -> list[str]:
        """The filter's conditions; every value is checked before it enters the query."""
        clauses = []
        if self.roles:
            awaited = ", ".join(_literal(r) for r in self.roles)
            clauses.append(f"{sa.AWAITING_DECISION.name} IN ({awaited})")
        if self.playbook:
            try:
                playbook = PlaybookName(self.playbook).value
            except ValueError:
                valid = ", ".join(p.value for p in PlaybookName)
                raise InboxFilterError(
                    f"unknown playbook {self.playbook!r}; choose one of: {valid}"
                ) from None
            clauses.append(f"{sa.PLAYBOOK.name} = '{playbook}'")
        if self.counterparty:
            clauses.append(f"{sa.COUNTERPARTY.name} = {_literal(self.counterparty)}")
        if self.task_queue:
            clauses.append(f"TaskQueue = {_literal(self.task_queue)}")
        return clauses

    def query(self) -> str:
        """The visibility query of running negotiations that match."""
        base = ["WorkflowType = 'NegotiationWorkflow'", "ExecutionStatus = 'Running'"]
        return " AND ".join(base + self.conditions())


#: What a filter value may be (the API's document states it): no quote or backslash, which
#: cannot be escaped in a visibility query, and no control character (C0, DEL, C1) nor line or
#: paragraph separator: the visibility store fails a query holding NUL as if it were down.
FILTER_VALUE = "^[^'\"\\\\\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
_FILTER_VALUE = re.compile(FILTER_VALUE)

#: The longest filter value: longer than any counterparty name (120) or task queue in use.
MAX_FILTER_CHARS = 200


def _literal(value: str) -> str:
    """A quoted literal for the visibility query; quotes and backslashes cannot be escaped there."""
    if not _FILTER_VALUE.fullmatch(value) or len(value) > MAX_FILTER_CHARS:
        raise InboxFilterError(
            "a filter value cannot contain quotes, backslashes or control characters, "
            f"nor exceed {MAX_FILTER_CHARS} characters"
        )
    return f"'{value}'"


#: The longest page token taken, as text (Temporal's own are well under 1 KB).
MAX_TOKEN_CHARS = 2048
#: What a page token looks like (URL-safe base64); only one this UI sealed opens, though.
TOKEN_TEXT = r"^[A-Za-z0-9_-]*={0,2}$"
_TAG_BYTES = 16
_BAD_TOKEN = "the page token is not valid for these filters; start again from the first page"


class PageTokens:
    """Page tokens handed out with a page, sealed to the query they page through.

    Temporal's tokens are opaque, and the visibility store answers a made-up one as a server
    failure (retried until the deadline, then a 503). So a token leaves the UI with an HMAC of
    the query and itself, and only a token this UI gave for the same filters is ever sent back.
    """

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"fitnest inbox page token", "sha256").digest()

    def _tag(self, query: str, token: bytes) -> bytes:
        message = query.encode() + b"\0" + token
        return hmac.new(self._key, message, "sha256").digest()[:_TAG_BYTES]

    def seal(self, query: str, token: bytes | None) -> str | None:
        """``token`` as text for a link, bound to ``query``."""
        if not token:
            return None
        return base64.urlsafe_b64encode(self._tag(query, token) + token).decode()

    def open(self, query: str, text: str | None) -> bytes | None:
        """The token sealed for ``query``; InboxFilterError for any other text."""
        if not text:
            return None
        if len(text) > MAX_TOKEN_CHARS:
            raise InboxFilterError(_BAD_TOKEN)
        try:
            raw = base64.urlsafe_b64decode(text.encode("ascii"))
        except (binascii.Error, ValueError):
            raise InboxFilterError(_BAD_TOKEN) from None
        tag, token = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
        if not token or not hmac.compare_digest(tag, self._tag(query, token)):
            raise InboxFilterError(_BAD_TOKEN)
        return token


@dataclass(frozen=True)
class InboxItem:
    """A pending decision shown in the inbox."""

    pending: PendingDecision
    acting_for: str | None = None

    @property
    def overdue(self) -> bool:
        """Past its due time."""
        return self.pending.due_at is not None and self.pending.due_at < datetime.now(UTC)


@dataclass
class InboxRow:
    """One negotiation with the decisions on it waiting for the reader."""

    negotiation_id: str
    counterparty: str | None
    playbook: str | None
    movement: str | None
    items: list[InboxItem] = field(default_factory=list)
    not_mine: int = 0
    #: Why its decisions cannot be shown (its status or request could not be read).
    error: str | None = None


@dataclass
class InboxPage:
    """One page of the inbox."""

    rows: list[InboxRow]
    next_token: str | None
    status_queries: int


#: Picks the decisions of one negotiation that the reader may take (or all, for a backend).
Selector = Callable[[PendingDecision, NegotiationRequest, NegotiationStatus], InboxItem | None]


async def inbox_page(
    client: Client,
    requests: RequestCache,
    filters: InboxFilters,
    select: Selector,
    *,
    tokens: PageTokens,
    page_size: int = 25,
    token: str | None = None,
) -> InboxPage:
    """One page of negotiations awaiting ``filters.roles``, with the decisions ``select`` keeps.

    ``token`` is a ``next_token`` that ``tokens`` sealed for the same filters, or none.
    """
    query = filters.query()
    executions = client.list_workflows(
        query, page_size=page_size, next_page_token=tokens.open(query, token)
    )
    try:
        await executions.fetch_next_page()
    except RPCError as err:
        refused_as_invalid(err)
        raise  # Temporal unreachable or failing: the app answers 503
    page = list(executions.current_page or [])[:page_size]
    gate = asyncio.Semaphore(CONCURRENT_QUERIES)
    rows = await asyncio.gather(*(_row(client, requests, wf, select, gate) for wf in page))
    return InboxPage(
        rows=list(rows),
        next_token=tokens.seal(query, executions.next_page_token),
        status_queries=len(page),
    )


def refused_as_invalid(err: RPCError) -> None:
    """A query Temporal refuses as invalid is bad input (422), not an outage: never retried."""
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        raise InboxFilterError(f"the inbox could not be listed: {err.message}") from err


async def _row(
    client: Client,
    requests: RequestCache,
    wf: WorkflowExecution,
    select: Selector,
    gate: asyncio.Semaphore,
) -> InboxRow:
    values = {pair.key.name: pair.value for pair in wf.typed_search_attributes}
    row = InboxRow(
        negotiation_id=wf.id,
        counterparty=_text(values.get(sa.COUNTERPARTY.name)),
        playbook=_text(values.get(sa.PLAYBOOK.name)),
        movement=_text(values.get(sa.MOVEMENT.name)),
    )
    async with gate:
        try:
            request = await requests.get(wf.id)
            status = await get_status(client, wf.id)
        except NegotiationError as err:  # gone since it was listed
            row.error = str(err)
            return row
        except Exception as err:  # one negotiation never takes the page down: name it instead
            row.error = left_out(wf.id, err, "inbox").reason
            return row
    for pending in status.pending_decisions:
        item = select(pending, request, status)
        if item is None:
            row.not_mine += 1
        else:
            row.items.append(item)
    return row


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
