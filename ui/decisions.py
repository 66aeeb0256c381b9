"""Taking a decision through the UI: check it at the edge, send it with the ``decide`` update, audit it.

The edge refuses what the signed-in approver may not do (403: someone else's negotiation, outside
their role or authority, approving terms they wrote); the workflow refuses what it cannot take
(409, with its reason: stale version, already decided, revised terms beyond the walk-away...).
Either way, and when accepted, one audit record is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError
from temporalio.client import Client

from negotiation.models import DecisionReceipt, HumanDecision, Verdict
from negotiation.terms import Terms
from starters.client import DecisionRejected, NegotiationClosed, NegotiationNotFound, decide
from ui.audit import AttemptOutcome, AuditLog, attempt_by
from ui.directory import Approver
from ui.negotiations import NegotiationView, entitlement


@dataclass(frozen=True)
class DecisionForm:
    """What the decision form sent (identity is not part of it: it comes from the session)."""

    request_id: str
    verdict: str
    message_id: str
    terms_version: int | None = None
    comment: str = ""
    revised_terms: dict[str, str] | None = None


@dataclass(frozen=True)
class DecisionResult:
    """What became of a decision: the receipt, or why it was refused (and the HTTP status to show)."""

    status_code: int
    message: str
    receipt: DecisionReceipt | None = None


def _refusal_reason(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors()[:5]
    )


def _parse(form: DecisionForm, approver: Approver) -> HumanDecision | str:
    """The decision as the workflow takes it, or the reason the input is not one."""
    try:
        terms = None
        if form.verdict == Verdict.REVISE.value and form.revised_terms is not None:
            fields = {k: v for k, v in form.revised_terms.items() if v.strip()}
            clauses = fields.pop("non_standard_clauses", "")
            terms = Terms.model_validate(
                {
                    **fields,
                    "non_standard_clauses": [c for c in clauses.replace(",", " ").split() if c],
                }
            )
        return HumanDecision(
            message_id=form.message_id,
            request_id=form.request_id,
            approver=approver.participant,
            verdict=form.verdict,  # type: ignore[arg-type]
            terms_version=form.terms_version,
            comment=form.comment,
            revised_terms=terms,
        )
    except ValidationError as err:
        return f"the decision is not valid: {_refusal_reason(err)}"


async def take_decision(
    client: Client, audit: AuditLog, approver: Approver, view: NegotiationView, form: DecisionForm
) -> DecisionResult:
    """Check, send and audit one decision attempt."""
    negotiation_id = view.status.negotiation_id
    outcome, result = await _attempt(client, approver, view, form)
    await audit.append(
        attempt_by(
            approver,
            negotiation_id=negotiation_id,
            request_id=form.request_id,
            verdict=form.verdict,
            message_id=form.message_id,
            outcome=outcome,
            reason="" if outcome == AttemptOutcome.ACCEPTED else result.message,
            terms_version=form.terms_version,
        )
    )
    return result


async def _attempt(
    client: Client, approver: Approver, view: NegotiationView, form: DecisionForm
) -> tuple[AttemptOutcome, DecisionResult]:
    decision = _parse(form, approver)
    if isinstance(decision, str):
        return AttemptOutcome.REFUSED_BY_UI, DecisionResult(422, decision)
    pending = next(
        (p for p in view.status.pending_decisions if p.request_id == form.request_id), None
    )
    if view.request.participant(approver.participant) is None:
        return AttemptOutcome.REFUSED_BY_UI, DecisionResult(
            403, "you are not a participant in this negotiation"
        )
    if pending is not None:
        allowed = entitlement(
            approver, pending, view.request, view.status, datetime.now(UTC), decision.verdict
        )
        if not allowed.allowed:
            return AttemptOutcome.REFUSED_BY_UI, DecisionResult(403, allowed.reason)
    # An unknown or already-decided request goes on: the workflow says why in its own words.
    try:
        receipt = await decide(client, view.status.negotiation_id, decision)
    except (DecisionRejected, NegotiationClosed) as err:
        return AttemptOutcome.REFUSED_BY_WORKFLOW, DecisionResult(409, str(err))
    except NegotiationNotFound as err:
        return AttemptOutcome.FAILED, DecisionResult(404, str(err))
    words = {Verdict.APPROVE: "approved", Verdict.REJECT: "rejected", Verdict.REVISE: "revised"}
    return AttemptOutcome.ACCEPTED, DecisionResult(
        200,
        f"Recorded: {receipt.approver} {words[receipt.verdict]} request {receipt.request_id} "
        f"on terms version {receipt.terms_version} at {receipt.recorded_at:%Y-%m-%d %H:%M:%S} UTC.",
        receipt,
    )
