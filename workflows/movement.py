"""What every movement does the same way: receive messages, report, ask people, wait on the deadline.

Each movement workflow subclasses :class:`MovementPlayer`. Its inbox holds messages forwarded by the
negotiation until the movement is ready for them, so nothing that arrives early is lost; whatever
is left when the movement ends goes back to the negotiation in the returned state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notifications import Delivery, Notification, Notifier
    from activities.timeouts import NOTIFY
    from negotiation.models import (
        CounterpartyAction,
        CounterpartyResponse,
        DecisionKind,
        DecisionRecord,
        DecisionRequest,
        HumanDecision,
        Movement,
        RejectedMessage,
        RoleCard,
        Verdict,
    )
    from negotiation.policy import Requirement
    from negotiation.terms import Offer, Party, Terms
    from workflows.protocol import (
        DELIVER_SIGNAL,
        REPORT_SIGNAL,
        Envelope,
        MovementReport,
        ScoreState,
    )

ALL_VERDICTS = (Verdict.APPROVE, Verdict.REJECT, Verdict.REVISE)


class Expired(Exception):
    """The negotiation's deadline passed while this movement waited."""


@dataclass
class AskOutcome:
    """The answer to a round of decision requests."""

    approved: bool
    deciding: DecisionRecord | None = None
    revised_terms: Terms | None = None
    decisions: list[DecisionRecord] = field(default_factory=list)


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


class MovementPlayer:
    """Shared machinery of the four movement workflows."""

    movement: ClassVar[Movement]

    def __init__(self, state: ScoreState) -> None:
        self.state = state
        self.inbox: list[Envelope] = list(state.inbox)
        state.inbox = []

    @workflow.signal(name=DELIVER_SIGNAL)
    def deliver(self, envelope: Envelope) -> None:
        """Take a message forwarded by the negotiation; acted on when the movement is ready."""
        self.inbox.append(envelope)

    # --- reporting -------------------------------------------------------------------------

    @property
    def negotiation_id(self) -> str:
        return self.state.request.negotiation_id

    async def report(self, **parts: object) -> None:
        """Tell the negotiation what just happened, so its status stays whole."""
        report = MovementReport(movement=self.movement, round=self.state.round, **parts)  # type: ignore[arg-type]
        await workflow.get_external_workflow_handle(self.negotiation_id).signal(
            REPORT_SIGNAL, report
        )

    async def reject(self, message_id: str | None, kind: str, reason: str) -> None:
        """Record a message that cannot be used, with the reason."""
        await self.report(
            rejected=[
                RejectedMessage(message_id=message_id, kind=kind, reason=reason, at=workflow.now())
            ]
        )

    def leftover(self) -> ScoreState:
        """The state to hand back: unprocessed messages return to the negotiation."""
        self.state.inbox = self.inbox
        return self.state

    # --- time -------------------------------------------------------------------------------

    async def until(self, ready: Callable[[], bool], summary: str) -> None:
        """Wait for ``ready``, but never past the negotiation's deadline."""
        if ready():
            return
        remaining = self.state.request.mandate.deadline - workflow.now()
        if remaining <= timedelta(0):
            raise Expired()
        try:
            await workflow.wait_condition(ready, timeout=remaining, timeout_summary=summary)
        except TimeoutError:
            raise Expired() from None

    # --- offers -----------------------------------------------------------------------------

    def new_offer(self, party: Party, terms: Terms, note: str = "") -> Offer:
        """Number the next version of the terms."""
        offer = Offer(
            version=self.state.next_version,
            party=party,
            round=self.state.round,
            terms=terms,
            at=workflow.now(),
            note=note,
        )
        self.state.next_version += 1
        if party == Party.US:
            self.state.our_offer = offer
        else:
            self.state.their_offer = offer
        return offer

    async def notify(
        self, key: str, kind: str, to: Sequence[str], subject: str, body: str
    ) -> Delivery:
        """Send a notification once, whatever retries happen."""
        note = Notification(
            idempotency_key=f"{self.negotiation_id}/{key}",
            negotiation_id=self.negotiation_id,
            kind=kind,
            to=tuple(to),
            subject=subject,
            body=body,
        )
        return await workflow.execute_activity_method(
            Notifier.send_notification, note, summary=f"notify: {kind}", **NOTIFY
        )

    async def send_to_counterparty(self, offer: Offer, headline: str) -> None:
        """Send an offer (ours or an acceptance of theirs) to the counterparty."""
        req = self.state.request
        body = (
            f"{headline}\n\nTerms version {offer.version}:\n{describe(offer.terms, req.currency)}\n"
        )
        await self.notify(
            f"counterparty/v{offer.version}/{self.movement.value}",
            "offer",
            [req.counterparty.email],
            f"{headline} (version {offer.version})",
            body,
        )

    # --- counterparty -----------------------------------------------------------------------

    def _has_counterparty(self) -> bool:
        return any(e.counterparty is not None for e in self.inbox)

    async def next_response(
        self, allowed: set[CounterpartyAction], waiting_for: str
    ) -> CounterpartyResponse:
        """The counterparty's next usable message; stale or out-of-place ones are rejected with a reason."""
        while True:
            await self.until(self._has_counterparty, f"waiting for the counterparty: {waiting_for}")
            envelope = next(e for e in self.inbox if e.counterparty is not None)
            self.inbox.remove(envelope)
            response = envelope.counterparty
            assert response is not None
            if response.message_id in self.state.processed_ids:
                continue
            if response.sequence <= self.state.last_sequence:
                await self.reject(
                    response.message_id,
                    "counterparty_response",
                    f"stale: sequence {response.sequence} is not after {self.state.last_sequence}",
                )
                continue
            if response.action not in allowed:
                choices = ", ".join(sorted(a.value for a in allowed))
                await self.reject(
                    response.message_id,
                    "counterparty_response",
                    f"'{response.action.value}' is not possible in the {self.movement.value} movement "
                    f"(expected one of: {choices})",
                )
                continue
            self.state.last_sequence = response.sequence
            self.state.processed_ids.append(response.message_id)
            return response

    # --- people -----------------------------------------------------------------------------

    def _holders(self, need: Requirement) -> list[RoleCard]:
        return [
            p
            for p in self.state.request.participants
            if p.role == need.role and p.authority_limit >= need.min_authority
        ]

    def _new_request(
        self,
        need: Requirement,
        kind: DecisionKind,
        offer: Offer,
        suggestion: Terms | None,
        verdicts: tuple[Verdict, ...],
    ) -> DecisionRequest:
        self.state.asked += 1
        policy = self.state.policy
        hours = (
            policy.tier_for(offer.terms.total_contract_value).decision_due_hours if policy else 24
        )
        now = workflow.now()
        return DecisionRequest(
            request_id=f"{self.movement.value[:3]}-{self.state.asked}-{kind.value}-{need.role.value}",
            kind=kind,
            role=need.role,
            required_authority=need.min_authority,
            reason=need.reason,
            terms_version=offer.version,
            movement=self.movement,
            created_at=now,
            due_at=now + timedelta(hours=hours),
            suggestion=suggestion,
            verdicts=verdicts,
        )

    async def _notify_approvers(self, requests: Sequence[DecisionRequest], offer: Offer) -> None:
        req = self.state.request
        sends = []
        for dr in requests:
            need = Requirement(role=dr.role, min_authority=dr.required_authority, reason=dr.reason)
            to = [p.email for p in self._holders(need)] or [p.email for p in req.holders(dr.role)]
            if not to:
                continue
            suggestion = (
                f"\nThe strategy suggests countering with:\n{describe(dr.suggestion, req.currency)}\n"
                if dr.suggestion
                else ""
            )
            body = (
                f"Decision needed: {dr.kind.value} ({dr.reason}).\n"
                f"Negotiation {req.negotiation_id} with {req.counterparty.name}, terms version {offer.version}:\n"
                f"{describe(offer.terms, req.currency)}\n{suggestion}\n"
                f"Answer with: fitnest decide {req.negotiation_id} {dr.request_id} --approver NAME "
                f"--verdict {'|'.join(v.value for v in dr.verdicts)}\n"
            )
            sends.append(
                self.notify(
                    dr.request_id, "decision_request", to, f"Decision needed: {dr.kind.value}", body
                )
            )
        await asyncio.gather(*sends)

    def _take_decision(self, open_ids: set[str]) -> HumanDecision | None:
        for envelope in self.inbox:
            if envelope.decision is not None and envelope.decision.request_id in open_ids:
                self.inbox.remove(envelope)
                return envelope.decision
        return None

    def _record(self, decision: HumanDecision, request: DecisionRequest) -> DecisionRecord:
        card = self.state.request.participant(decision.approver)
        return DecisionRecord(
            request_id=request.request_id,
            kind=request.kind,
            role=request.role,
            approver=decision.approver,
            approver_authority=card.authority_limit if card else 0,
            verdict=decision.verdict,
            terms_version=request.terms_version,
            comment=decision.comment,
            at=workflow.now(),
            message_id=decision.message_id,
        )

    async def ask(
        self,
        needs: Sequence[tuple[Requirement, DecisionKind]],
        offer: Offer,
        *,
        together: bool,
        suggestion: Terms | None = None,
        verdicts: tuple[Verdict, ...] = ALL_VERDICTS,
    ) -> AskOutcome:
        """Put decisions to people: all at once (``together``) or one after another.

        Every request must be approved; the first reject or revise ends the round and withdraws
        the requests still open.
        """
        requests = [self._new_request(n, k, offer, suggestion, verdicts) for n, k in needs]
        batches = [requests] if together else [[r] for r in requests]
        taken: list[DecisionRecord] = []
        for batch in batches:
            await self.report(requested=batch)
            await self._notify_approvers(batch, offer)
            by_id = {r.request_id: r for r in batch}
            open_ids = set(by_id)
            while open_ids:
                await self.until(
                    lambda ids=open_ids: any(  # type: ignore[misc]
                        e.decision is not None and e.decision.request_id in ids for e in self.inbox
                    ),
                    f"waiting for {', '.join(sorted(by_id[i].role.value for i in open_ids))}",
                )
                decision = self._take_decision(open_ids)
                if decision is None or decision.message_id in self.state.processed_ids:
                    continue
                self.state.processed_ids.append(decision.message_id)
                record = self._record(decision, by_id[decision.request_id])
                open_ids.discard(decision.request_id)
                taken.append(record)
                await self.report(decided=[record])
                if record.verdict != Verdict.APPROVE:
                    if open_ids:
                        await self.report(withdrawn=sorted(open_ids))
                    return AskOutcome(False, record, decision.revised_terms, taken)
        return AskOutcome(True, decisions=taken)
