"""The JSON API for backend systems: start, respond, read, list, pending decisions.

Authenticated by API key (``Authorization: Bearer <key id>.<secret>``); every error is an RFC 9457
problem. The same client functions as the ``fitnest`` command do the work (``starters.client``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, WithJsonSchema
from temporalio.service import RPCError

from negotiation.models import (
    CounterpartyResponse,
    Identifier,
    NegotiationRequest,
    NegotiationStatus,
    PendingDecision,
    PlaybookName,
    Role,
)
from negotiation.report import LeftOut
from starters.client import (
    NegotiationBusy,
    NegotiationClosed,
    NegotiationNotFound,
    NegotiationSummary,
    ResponseRefused,
    StartReceipt,
    get_status,
    list_negotiations,
    start_negotiation,
)
from starters.client import respond as respond_now
from ui.cluster import Connected
from ui.directory import ApiKey
from ui.inbox import (
    FILTER_VALUE,
    MAX_FILTER_CHARS,
    MAX_TOKEN_CHARS,
    TOKEN_TEXT,
    InboxFilterError,
    InboxFilters,
    InboxItem,
    inbox_page,
    refused_as_invalid,
)
from ui.problems import BODY_PROBLEMS, PROBLEM_RESPONSES, ProblemError
from ui.security import api_client

router = APIRouter(
    prefix="/api/v1",
    tags=["negotiations"],
    responses=PROBLEM_RESPONSES,
    dependencies=[Depends(api_client)],
)

Caller = Annotated[ApiKey, Depends(api_client)]

#: A negotiation id in a path: what a negotiation id may be, so any other is a 422 at once.
NegotiationId = Annotated[Identifier, Path(description="The negotiation's id (its workflow id).")]
#: A filter value as the document states it; ``ui.inbox`` checks it, with its own reasons.
FilterText = Annotated[
    str,
    WithJsonSchema({"type": "string", "maxLength": MAX_FILTER_CHARS, "pattern": FILTER_VALUE}),
]
#: An exact counterparty name to filter by.
CounterpartyFilter = Annotated[
    FilterText | None,
    Query(description="Exact counterparty name; no quotes, backslashes or control characters."),
]
#: A page token as the document states it; only one this API sealed opens (``ui.inbox``).
TokenText = Annotated[
    str,
    WithJsonSchema({"type": "string", "maxLength": MAX_TOKEN_CHARS, "pattern": TOKEN_TEXT}),
]


class ResponseAccepted(BaseModel):
    """A counterparty response the negotiation took, in sequence: the movement playing acts on it."""

    negotiation_id: str
    message_id: str
    delivered: bool = True
    sequence: int | None = None
    taken_at: datetime | None = Field(default=None, description="When the negotiation took it.")
    kept_for_later: bool = Field(
        default=False,
        description="A negotiation started before answers at once took it as a signal: a "
        "refusal then shows in its status, not here.",
    )


class NegotiationList(BaseModel):
    """Negotiations from the visibility store, newest first."""

    negotiations: list[NegotiationSummary]


class PendingItem(BaseModel):
    """A decision request waiting for a person, with its negotiation."""

    negotiation_id: str
    counterparty: str | None
    playbook: str | None
    decision: PendingDecision


class PendingList(BaseModel):
    """A page of pending decisions; ask again with ``page_token`` for the next."""

    pending: list[PendingItem]
    next_page_token: str | None = Field(description="Give as page_token for the next page.")
    unreadable: list[LeftOut] = Field(
        default_factory=list,
        description="Negotiations of this page whose status or request could not be read, "
        "with why; their decisions are not listed.",
    )


@router.post("/negotiations", status_code=201, response_model=StartReceipt, responses=BODY_PROBLEMS)
async def start(
    body: NegotiationRequest, request: Request, response: Response, temporal: Connected
) -> StartReceipt:
    """Start a negotiation. Starting an id that exists already answers 409 and starts nothing."""
    task_queue = request.app.state.settings.task_queue
    try:
        receipt = await start_negotiation(temporal.client, body, task_queue=task_queue)
    except ValueError as err:  # a deadline already past
        raise ProblemError(422, "validation", str(err)) from err
    if not receipt.started:
        raise ProblemError(
            409, "already-started", f"negotiation {body.negotiation_id} was started already"
        )
    response.headers["Location"] = f"/api/v1/negotiations/{body.negotiation_id}"
    return receipt


@router.get("/negotiations", response_model=NegotiationList)
async def list_all(
    request: Request,
    temporal: Connected,
    playbook: PlaybookName | None = None,
    counterparty: CounterpartyFilter = None,
    awaiting: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NegotiationList:
    """Negotiations, newest first, filtered by playbook, counterparty or the role they await."""
    filters = InboxFilters(
        roles=[awaiting.value] if awaiting else [],
        playbook=playbook.value if playbook else None,
        counterparty=counterparty,
        task_queue=request.app.state.settings.task_queue,
    )
    try:
        conditions = filters.conditions()
        try:
            found = await list_negotiations(
                temporal.client, " AND ".join(conditions) or None, limit=limit
            )
        except RPCError as err:
            refused_as_invalid(err)
            raise
    except InboxFilterError as err:
        raise ProblemError(422, "validation", str(err)) from err
    return NegotiationList(negotiations=found)


@router.get("/negotiations/{negotiation_id}", response_model=NegotiationStatus)
async def read(negotiation_id: NegotiationId, temporal: Connected) -> NegotiationStatus:
    """A negotiation's status, open or closed."""
    try:
        return await get_status(temporal.client, negotiation_id)
    except NegotiationNotFound as err:
        raise ProblemError(404, "not-found", str(err)) from err


@router.post(
    "/negotiations/{negotiation_id}/responses",
    status_code=202,
    response_model=ResponseAccepted,
    responses=BODY_PROBLEMS,
)
async def respond(
    negotiation_id: NegotiationId, body: CounterpartyResponse, temporal: Connected
) -> ResponseAccepted:
    """Deliver a counterparty response and answer from the negotiation's own answer: 202 when it
    was taken (in sequence, de-duplicated by message id: a repeat answers 202 again), 409 when
    it cannot be (closed, stale sequence, not possible in this movement, message id reused), 422
    when it is malformed, 503 when the negotiation kept moving between movements."""
    try:
        receipt = await respond_now(temporal.client, negotiation_id, body)
    except NegotiationNotFound as err:
        raise ProblemError(404, "not-found", str(err)) from err
    except NegotiationClosed as err:
        raise ProblemError(409, "closed", str(err)) from err
    except ResponseRefused as err:
        status = 422 if err.code == "malformed" else 409
        raise ProblemError(status, err.code.replace("_", "-"), str(err)) from err
    except NegotiationBusy as err:
        raise ProblemError(503, "busy", str(err)) from err
    return ResponseAccepted(
        negotiation_id=negotiation_id,
        message_id=body.message_id,
        sequence=receipt.sequence,
        taken_at=receipt.received_at,
        kept_for_later=receipt.kept_for_later,
    )


@router.get("/decisions/pending", response_model=PendingList)
async def pending(
    request: Request,
    temporal: Connected,
    role: Annotated[list[Role] | None, Query(description="Roles awaited; all when absent.")] = None,
    playbook: PlaybookName | None = None,
    counterparty: CounterpartyFilter = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 25,
    page_token: Annotated[
        TokenText | None,
        Query(description="The next_page_token of the page before, with the same filters."),
    ] = None,
) -> PendingList:
    """Pending decisions across negotiations, a page of negotiations at a time."""
    roles = [r.value for r in (role or list(Role))]
    try:
        page = await inbox_page(
            temporal.client,
            temporal.requests,
            InboxFilters(
                roles=roles,
                playbook=playbook.value if playbook else None,
                counterparty=counterparty,
                task_queue=request.app.state.settings.task_queue,
            ),
            lambda p, _req, _st: InboxItem(pending=p) if p.role.value in roles else None,
            tokens=request.app.state.page_tokens,
            page_size=page_size,
            token=page_token,
        )
    except InboxFilterError as err:
        raise ProblemError(422, "validation", str(err)) from err
    items = [
        PendingItem(
            negotiation_id=row.negotiation_id,
            counterparty=row.counterparty,
            playbook=row.playbook,
            decision=item.pending,
        )
        for row in page.rows
        for item in row.items
    ]
    unreadable = [
        LeftOut(negotiation_id=row.negotiation_id, reason=row.error)
        for row in page.rows
        if row.error is not None
    ]
    return PendingList(pending=items, next_page_token=page.next_token, unreadable=unreadable)
