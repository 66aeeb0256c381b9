"""What the negotiation says to people: one notification, sent once, and terms as text.

Shared by the movements of both message paths (``workflows/legacy/`` too): change it only in ways
that keep the commands it issues the same, since running negotiations replay through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import Notification, NotificationBatch, Notifier
    from activities.timeouts import NOTIFY
    from negotiation.terms import Terms


def cause_of(err: ActivityError) -> str:
    """The failure's type, for the record (never its message: it may quote data)."""
    cause = err.cause
    return getattr(cause, "type", None) or type(cause or err).__name__


async def send_once(
    negotiation_id: str, key: str, kind: str, to: Sequence[str], subject: str, body: str
) -> str | None:
    """Send a notification once, whatever retries happen; the failure's type when it could not.

    A refused or long-undeliverable notification must never end a negotiation.
    """
    note = Notification(
        idempotency_key=f"{negotiation_id}/{key}",
        negotiation_id=negotiation_id,
        kind=kind,
        to=tuple(to),
        subject=subject,
        body=body,
    )
    try:
        await workflow.execute_activity_method(
            Notifier.send_notification, note, summary=f"notify: {kind}", **NOTIFY
        )
    except ActivityError as err:
        return cause_of(err)
    return None


async def send_all(negotiation_id: str, notes: Sequence[Notification]) -> dict[str, str]:
    """Send several notifications in one activity, each once under its own key; the failure's
    type of each that could not be delivered (all of them when the activity itself failed)."""
    try:
        delivery = await workflow.execute_activity_method(
            Notifier.send_notifications,
            NotificationBatch(notifications=tuple(notes)),
            summary=f"notify: {len(notes)} x {notes[0].kind}",
            **NOTIFY,
        )
    except ActivityError as err:
        return {n.idempotency_key: cause_of(err) for n in notes}
    return dict(delivery.refused)


def describe(terms: Terms, currency: str) -> str:
    """Terms as lines of text, for notifications to people entitled to see them."""
    clauses = ", ".join(terms.non_standard_clauses) or "none"
    return "\n".join(
        [
            f"  Total contract value: {terms.total_contract_value} {currency}",
            f"  Discount: {terms.discount_pct}%",
            f"  Payment: {terms.payment_days} days",
            f"  Term: {terms.term_months} months",
            f"  Liability cap: {terms.liability_cap_multiple}x fees",
            f"  Non-standard clauses: {clauses}",
        ]
    )
