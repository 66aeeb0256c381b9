"""Whether a person's decision may be accepted: the rules behind the ``decide`` validator."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from negotiation.mandate import evaluate
from negotiation.models import DecisionRecord, DecisionRequest, HumanDecision, RoleCard
from negotiation.terms import Mandate


def explain(err: ValidationError) -> str:
    """A validation error in a few plain parts (where and what), for a rejection's reason."""
    parts = [
        f"{'.'.join(str(p)[:64] for p in e['loc']) or 'message'}: {e['msg']}"
        for e in err.errors()[:5]
    ]
    return "; ".join(parts)


def rejection_reason(
    decision: HumanDecision,
    request: DecisionRequest | None,
    taken: DecisionRecord | None,
    participants: tuple[RoleCard, ...],
    mandate: Mandate | None = None,
    now: datetime | None = None,
) -> str | None:
    """Why ``decision`` cannot be accepted, or None when it can.

    ``request`` is the pending request it answers (None when unknown), ``taken`` the decision
    already recorded for it, if any. With a ``mandate``, revised terms (our counter) must lie
    within it: going beyond the walk-away is the counterparty's move to make, and ours to escalate.
    At ``now``, a delegate may decide for a participant whose delegation is in force.
    """
    if taken is not None:
        return (
            f"decision request {decision.request_id} was already decided "
            f"({taken.verdict.value} by {taken.approver})"
        )
    if request is None:
        return f"unknown decision request {decision.request_id}: nothing is waiting for it"
    if decision.terms_version is not None and decision.terms_version != request.terms_version:
        return (
            f"stale terms version {decision.terms_version}: request {request.request_id} "
            f"is about version {request.terms_version}"
        )
    if decision.verdict not in request.verdicts:
        allowed = ", ".join(v.value for v in request.verdicts)
        return f"request {request.request_id} takes only: {allowed}"
    card = next((p for p in participants if p.name == decision.approver), None)
    if card is None:
        return f"{decision.approver} is not a participant in this negotiation"
    own = _own_reason(card, request)
    if own is not None and acting_for(decision.approver, request, participants, now) is None:
        return own + _delegation_hint(decision.approver, request, participants, now)
    if mandate is not None and decision.revised_terms is not None:
        beyond = evaluate(decision.revised_terms, mandate).beyond
        if beyond:
            return (
                f"revised terms lie beyond the walk-away on {', '.join(beyond)}: "
                "counter within the mandate, or approve or reject the counterparty's terms"
            )
    return None


def _own_reason(card: RoleCard, request: DecisionRequest) -> str | None:
    if card.role != request.role:
        return (
            f"{card.name} holds the role {card.role.value}; this request needs {request.role.value}"
        )
    if card.authority_limit < request.required_authority:
        return f"{card.name}'s authority limit is below what request {request.request_id} requires"
    return None


def acting_for(
    approver: str,
    request: DecisionRequest,
    participants: tuple[RoleCard, ...],
    now: datetime | None,
) -> RoleCard | None:
    """The participant ``approver`` may decide for as their delegate at ``now``, if any.

    Delegation is one hop: a delegate acts for the person who named them, never for whoever
    named that person.
    """
    if now is None:
        return None
    for card in participants:
        d = card.delegation
        if (
            d is not None
            and d.delegate == approver
            and d.covers(now)
            and _own_reason(card, request) is None
        ):
            return card
    return None


def _delegation_hint(
    approver: str,
    request: DecisionRequest,
    participants: tuple[RoleCard, ...],
    now: datetime | None,
) -> str:
    for card in participants:
        d = card.delegation
        if d is not None and d.delegate == approver and _own_reason(card, request) is None:
            return (
                f" (the delegation from {card.name} runs from {d.starts.isoformat()} "
                f"to {d.ends.isoformat()})"
            )
    return ""
