"""Whether a person's decision may be accepted: the rules behind the ``decide`` validator."""

from __future__ import annotations

from negotiation.mandate import evaluate
from negotiation.models import DecisionRecord, DecisionRequest, HumanDecision, RoleCard
from negotiation.terms import Mandate


def rejection_reason(
    decision: HumanDecision,
    request: DecisionRequest | None,
    taken: DecisionRecord | None,
    participants: tuple[RoleCard, ...],
    mandate: Mandate | None = None,
) -> str | None:
    """Why ``decision`` cannot be accepted, or None when it can.

    ``request`` is the pending request it answers (None when unknown), ``taken`` the decision
    already recorded for it, if any. With a ``mandate``, revised terms (our counter) must lie
    within it: going beyond the walk-away is the counterparty's move to make, and ours to escalate.
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
    if card.role != request.role:
        return (
            f"{card.name} holds the role {card.role.value}; this request needs {request.role.value}"
        )
    if card.authority_limit < request.required_authority:
        return f"{card.name}'s authority limit is below what request {request.request_id} requires"
    if mandate is not None and decision.revised_terms is not None:
        beyond = evaluate(decision.revised_terms, mandate).beyond
        if beyond:
            return (
                f"revised terms lie beyond the walk-away on {', '.join(beyond)}: "
                "counter within the mandate, or approve or reject the counterparty's terms"
            )
    return None
