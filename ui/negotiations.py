"""What the UI reads about one negotiation: its status, the request it started from, and who may decide.

The workflow is the single source of truth. Its ``status`` query tells the story as it stands; the
request (mandate and role cards) is the workflow's input, read from the first event of its
history, so the workflow needs no extra query for it. Requests never change, so they are cached.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from temporalio.client import Client

from negotiation.decisions import acting_for
from negotiation.mandate import position_of
from negotiation.models import (
    DecisionKind,
    DecisionRequest,
    NegotiationRequest,
    NegotiationStatus,
    PendingDecision,
    RoleCard,
    Verdict,
)
from negotiation.terms import NUMERIC_TERMS, Offer, Party, Position, TermBound
from starters.client import get_request, get_status
from ui.directory import Approver

#: Requests kept in memory; each is a few kilobytes and never changes.
_CACHED_REQUESTS = 4096

TERM_LABELS = {
    "total_contract_value": "Total contract value",
    "discount_pct": "Discount %",
    "payment_days": "Payment days",
    "term_months": "Term (months)",
    "liability_cap_multiple": "Liability cap (x annual fees)",
}


class RequestCache:
    """Negotiation requests by id, read once from each workflow's history."""

    def __init__(self, client: Client, size: int = _CACHED_REQUESTS) -> None:
        self.client = client
        self.size = size
        self._cache: OrderedDict[str, NegotiationRequest] = OrderedDict()

    async def get(self, negotiation_id: str) -> NegotiationRequest:
        """The request ``negotiation_id`` started from; NegotiationNotFound when there is none."""
        if negotiation_id in self._cache:
            self._cache.move_to_end(negotiation_id)
            return self._cache[negotiation_id]
        request = await get_request(self.client, negotiation_id)
        self._cache[negotiation_id] = request
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return request


@dataclass(frozen=True)
class TermRow:
    """One term of the mandate beside the latest offers of both sides."""

    name: str
    label: str
    bound: TermBound | None
    ours: Decimal | None
    ours_position: Position | None
    theirs: Decimal | None
    theirs_position: Position | None


def term_rows(request: NegotiationRequest, status: NegotiationStatus) -> list[TermRow]:
    """Each numeric term: target, walk-away, and where each side's latest offer sits."""
    bounds = request.mandate.bounds()
    rows = []
    for name in NUMERIC_TERMS:
        bound = bounds.get(name)

        def side(offer: Offer | None, bound: TermBound | None = bound, name: str = name):  # type: ignore[no-untyped-def]
            if offer is None:
                return None, None
            value = offer.terms.value_of(name)
            return value, position_of(value, bound) if bound else None

        ours, ours_pos = side(status.our_terms)
        theirs, theirs_pos = side(status.their_terms)
        rows.append(TermRow(name, TERM_LABELS[name], bound, ours, ours_pos, theirs, theirs_pos))
    return rows


def clause_position(clauses: tuple[str, ...], request: NegotiationRequest) -> Position:
    """Non-standard clauses are within the mandate only when each is on its acceptable list."""
    allowed = set(request.mandate.acceptable_clauses)
    return (
        Position.BEYOND_WALK_AWAY
        if any(c not in allowed for c in clauses)
        else Position.MEETS_TARGET
    )


def author_of(status: NegotiationStatus, version: int) -> str | None:
    """The participant whose ``revise`` wrote our terms version ``version``, if a person did.

    A revise is followed by our next offer; so the author of our offer is the approver of the last
    revise recorded after the offer before it (and not after the offer itself).
    """
    offer = next((o for o in status.offers if o.version == version), None)
    if offer is None or offer.party != Party.US:
        return None
    earlier = [o.at for o in status.offers if o.version < version]
    since = max(earlier) if earlier else None
    revises = [
        d
        for d in status.decisions
        if d.verdict == Verdict.REVISE and d.at <= offer.at and (since is None or d.at >= since)
    ]
    return revises[-1].approver if revises else None


def as_request(pending: PendingDecision, status: NegotiationStatus) -> DecisionRequest:
    """A pending decision as the domain's decision request, for the domain's rules."""
    return DecisionRequest(
        request_id=pending.request_id,
        kind=pending.kind,
        role=pending.role,
        required_authority=pending.required_authority,
        reason=pending.reason,
        terms_version=pending.terms_version,
        # Statuses from before PendingDecision carried these fall back to the negotiation's.
        movement=pending.movement or status.movement,
        created_at=pending.created_at or status.started_at,
        due_at=pending.due_at,
    )


@dataclass(frozen=True)
class Entitlement:
    """Whether the signed-in approver may take a pending decision, and as whom."""

    allowed: bool
    reason: str = ""
    acting_for: RoleCard | None = None
    #: Refused only because the approver wrote these terms: they may still reject or revise.
    own_terms: bool = False


def entitlement(
    approver: Approver,
    pending: PendingDecision,
    request: NegotiationRequest,
    status: NegotiationStatus,
    now: datetime,
    verdict: Verdict = Verdict.APPROVE,
) -> Entitlement:
    """May ``approver`` answer ``pending`` with ``verdict``? Role and authority come from the
    directory (delegations from the negotiation's role cards); nobody approves terms they wrote.

    The workflow checks again with its own role cards: this is the edge's check, not the only one.
    """
    if request.participant(approver.participant) is None:
        return Entitlement(False, "you are not a participant in this negotiation")
    delegator = None
    if pending.role != approver.role or approver.authority_limit < pending.required_authority:
        delegator = acting_for(
            approver.participant, as_request(pending, status), request.participants, now
        )
        if delegator is None:
            if pending.role != approver.role:
                return Entitlement(
                    False,
                    f"this decision needs the role {pending.role.value}; you hold {approver.role.value}",
                )
            return Entitlement(
                False, f"this decision needs more authority than yours ({approver.authority_limit})"
            )
    if (
        verdict == Verdict.APPROVE
        and pending.kind != DecisionKind.SIGNATURE
        and author_of(status, pending.terms_version) == approver.participant
    ):
        return Entitlement(
            False,
            f"you wrote terms version {pending.terms_version} yourself (your revise): "
            "someone else must approve it",
            acting_for=delegator,
            own_terms=True,
        )
    return Entitlement(True, acting_for=delegator)


@dataclass(frozen=True)
class NegotiationView:
    """Everything the negotiation page shows, read at one moment."""

    request: NegotiationRequest
    status: NegotiationStatus


async def read_negotiation(
    client: Client, requests: RequestCache, negotiation_id: str
) -> NegotiationView:
    """The negotiation's request and status; NegotiationNotFound when there is none."""
    request = await requests.get(negotiation_id)
    status = await get_status(client, negotiation_id)
    return NegotiationView(request=request, status=status)
