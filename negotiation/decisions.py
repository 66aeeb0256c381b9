"""Whether a person's decision may be accepted: the rules behind the ``decide`` validator."""

from __future__ import annotations

from negotiation.models import DecisionRecord, DecisionRequest, HumanDecision, RoleCard


def rejection_reason(
    decision: HumanDecision,
    request: DecisionRequest | None,
    taken: DecisionRecord | None,
    participants: tuple[RoleCard, ...],
) -> str | None:
    """Why ``decision`` cannot be accepted, or None when it can.

    ``request`` is the pending request it answers (None when unknown), ``taken`` the decision
    already recorded for it, if any.
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
    card = next((p for p in participants if p.name == decision.approver), None)
    if card is None:
        return f"{decision.approver} is not a participant in this negotiation"
    if card.role != request.role:
        return f"{card.name} holds the role {card.role.value}; this request needs {request.role.value}"
    if card.authority_limit < request.required_authority:
        return f"{card.name}'s authority limit is below what request {request.request_id} requires"
    return None
