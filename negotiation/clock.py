"""Time in the score: checkpoint rhythms, decision due times, standing approvals.

Pure functions of the times and terms they are given; the workflows supply ``workflow.now()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from negotiation.models import DecisionRecord, NegotiationRequest, Role, Verdict
from negotiation.policy import Policy
from negotiation.terms import NUMERIC_TERMS, Terms

_ALL_TERMS = (*NUMERIC_TERMS, "non_standard_clauses")


def checkpoint_cadence(request: NegotiationRequest, policy: Policy) -> tuple[int, bool]:
    """(every how many days, counting working days only?) for this negotiation's checkpoints."""
    if request.time_sensitive:
        return 1, True
    return request.checkpoint_days or policy.checkpoint_days, False


def next_checkpoint(after: datetime, every_days: int, working_days: bool) -> datetime:
    """When the next checkpoint falls: ``every_days`` later, skipping Saturdays and Sundays when
    only working days count."""
    moment = after
    remaining = every_days
    while remaining > 0:
        moment += timedelta(days=1)
        if not working_days or moment.weekday() < 5:
            remaining -= 1
    return moment


@dataclass(frozen=True)
class DecisionClock:
    """When a decision request is due, when its approver is reminded and when it escalates."""

    asked_at: datetime
    due_in: timedelta

    @property
    def due_at(self) -> datetime:
        return self.asked_at + self.due_in

    @property
    def remind_at(self) -> datetime:
        """At the due time."""
        return self.due_at

    @property
    def escalate_at(self) -> datetime:
        """At twice the due time."""
        return self.asked_at + 2 * self.due_in


def concerns(role: Role, policy: Policy) -> tuple[str, ...]:
    """The terms an approval by ``role`` is about."""
    return policy.concerns.get(role, _ALL_TERMS)


def unchanged_for(role: Role, before: Terms, after: Terms, policy: Policy) -> bool:
    """True when nothing ``role``'s approval is about differs between two versions of the terms."""
    return all(getattr(before, t) == getattr(after, t) for t in concerns(role, policy))


def standing_approval(
    role: Role,
    terms: Terms,
    approvals: Sequence[tuple[DecisionRecord, Terms]],
    policy: Policy,
) -> DecisionRecord | None:
    """The latest approval by ``role`` that still stands for ``terms``: one on an earlier version
    whose change did not touch what the approval is about."""
    for record, approved in reversed(approvals):
        if record.role == role and record.verdict == Verdict.APPROVE:
            return record if unchanged_for(role, approved, terms, policy) else None
    return None
