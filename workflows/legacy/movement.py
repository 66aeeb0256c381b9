"""[Legacy path, release 4: marked for removal with workflows/legacy/] What every movement does the same way: receive messages, report, ask people, wait on the deadline.

Each movement workflow subclasses :class:`MovementPlayer`. Its inbox holds messages forwarded by the
negotiation until the movement is ready for them, so nothing that arrives early is lost; whatever
is left when the movement ends goes back to the negotiation in the returned state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.reviews import ReviewInput, finance_approval, legal_review
    from activities.timeouts import REVIEW
    from negotiation.clock import DecisionClock, standing_approval
    from negotiation.decisions import rejection_reason
    from negotiation.models import (
        MAX_KIND,
        CounterpartyAction,
        CounterpartyResponse,
        DecisionKind,
        DecisionRecord,
        DecisionRequest,
        Escalation,
        Movement,
        RejectedMessage,
        Reminder,
        Role,
        RoleCard,
        Verdict,
        shorten,
    )
    from negotiation.policy import Requirement
    from negotiation.reviews import FinanceFindings, LegalFindings
    from negotiation.terms import Offer, Party, Terms
    from workflows.intake import message_id_of, read_one
    from workflows.legacy.protocol import (
        DELIVER_SIGNAL,
        INTERNAL_SIGNALS,
        REPORT_SIGNAL,
        REPORTS_SIGNAL,
        Approval,
        Envelope,
        MovementReport,
        MovementReports,
        ScoreState,
    )
    from workflows.outbound import cause_of as _cause
    from workflows.outbound import describe, send_once
    from workflows.seal import (
        SEALED_DELIVER,
        SEALED_REPORTS,
        open_sealed,
        seal_message,
    )

#: Reports are gathered and sent once per wait (release 2); histories of release 1 sent each one.
BATCHED_REPORTS = "batched-movement-reports"
#: A wait whose time has already passed returns at once (release 3); before, it waited zero
#: seconds, which from Python 3.12 on starts a timer.
NO_ZERO_LENGTH_WAIT = "no-zero-length-wait"

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


class MovementPlayer:
    """Shared machinery of the four movement workflows."""

    movement: ClassVar[Movement]

    def __init__(self, state: ScoreState) -> None:
        self.state = state
        self.inbox: list[Envelope] = list(state.inbox)
        state.inbox = []
        # Reports made since the movement last waited, sent together when it waits next.
        self.unsent: list[MovementReport] = list(state.reports)
        state.reports = []
        self.sending = False
        # A rejection made by a signal handler while the movement waits: its report goes out at
        # once, so the status shows it now rather than when the movement next moves.
        self.urgent = False

    @workflow.signal(dynamic=True)
    def receive(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal: a message the negotiation forwarded (sealed, unless this negotiation is
        from before the seal), or anything else, which is recorded as rejected with the reason."""
        kind = shorten(name, MAX_KIND)
        payload, unreadable = read_one(args)
        if unreadable is not None:
            self._refuse(None, kind, unreadable)
        elif name == SEALED_DELIVER and self.state.seal is not None:
            self._take_sealed(payload)
        elif name == DELIVER_SIGNAL and self.state.seal is None:
            try:  # a negotiation from before the seal forwards plain envelopes
                self.inbox.append(Envelope.model_validate(payload))
            except ValidationError:
                workflow.logger.warning("unreadable envelope from an unsealed negotiation")
        elif name in INTERNAL_SIGNALS:
            self._refuse(
                message_id_of(payload),
                kind,
                f"internal signal {kind!r} refused: a movement takes only what its negotiation "
                "seals for it",
            )
        else:
            self._refuse(
                message_id_of(payload),
                kind,
                f"unknown signal {kind!r}: a movement takes messages only from its negotiation",
            )

    def _take_sealed(self, payload: object) -> None:
        context = self.state.seal
        assert context is not None
        scope = context.scope_for(self.movement.value, "down")
        opened = open_sealed(context, SEALED_DELIVER, scope, payload, context.delivered, Envelope)
        if isinstance(opened, str):
            self._refuse(message_id_of(payload), SEALED_DELIVER, opened)
            return
        envelope, context.delivered = opened
        self.inbox.append(envelope)

    def _refuse(self, message_id: str | None, kind: str, reason: str) -> None:
        """Record a message refused by a signal handler; it is reported as soon as possible."""
        self.unsent.append(
            MovementReport(
                movement=self.movement,
                at=workflow.now(),
                rejected=[
                    RejectedMessage(
                        message_id=message_id, kind=kind, reason=reason, at=workflow.now()
                    )
                ],
            )
        )
        self.urgent = True

    def took(self, message_id: str) -> None:
        """A forwarded message was acted on (used, or found a repeat): the negotiation no longer
        counts it as held. Negotiations from before the seal did not track this."""
        if self.state.seal is not None:
            self.unsent.append(
                MovementReport(
                    movement=self.movement,
                    at=workflow.now(),
                    taken=[message_id],
                    last_sequence=self.state.last_sequence,
                )
            )

    def cancelled(self) -> ScoreState:
        """The state to hand back when the negotiation cancels this movement: what it held goes
        back, so the close can record it. Movements of negotiations from before the seal ended
        cancelled, as they always did."""
        if self.state.seal is None:
            raise asyncio.CancelledError()
        return self.leftover()

    # --- reporting -------------------------------------------------------------------------

    @property
    def negotiation_id(self) -> str:
        return self.state.request.negotiation_id

    async def report(self, **parts: object) -> None:
        """Tell the negotiation what just happened, so its status stays whole.

        The report goes out with the others when the movement next waits (see :meth:`send_reports`):
        until then nothing outside could have changed, so the status misses nothing it could act on.
        """
        report = MovementReport(
            movement=self.movement,
            round=self.state.round,
            at=workflow.now(),
            **parts,  # type: ignore[arg-type]
        )
        if workflow.patched(BATCHED_REPORTS):
            self.unsent.append(report)
            return
        report.at = None  # release 1 sent no time: the negotiation used its own clock
        await workflow.get_external_workflow_handle(self.negotiation_id).signal(
            REPORT_SIGNAL, report
        )

    async def send_reports(self) -> None:
        """Send the reports gathered since the last wait, in one signal."""
        if self.sending:  # one batch at a time, so the negotiation folds them in order
            await workflow.wait_condition(lambda: not self.sending)
        if not self.unsent:
            return
        batch, self.unsent = MovementReports(reports=self.unsent), []
        self.sending = True
        parent = workflow.get_external_workflow_handle(self.negotiation_id)
        try:
            context = self.state.seal
            if context is None:
                await parent.signal(REPORTS_SIGNAL, batch)
                return
            context.reported += 1
            scope = context.scope_for(self.movement.value, "up")
            sealed = seal_message(
                context, SEALED_REPORTS, scope, context.reported, batch.model_dump_json()
            )
            await parent.signal(SEALED_REPORTS, sealed)
        finally:
            self.sending = False

    async def reject(self, message_id: str | None, kind: str, reason: str) -> None:
        """Record a message that cannot be used, with the reason."""
        await self.report(
            rejected=[
                RejectedMessage(message_id=message_id, kind=kind, reason=reason, at=workflow.now())
            ]
        )

    def leftover(self) -> ScoreState:
        """The state to hand back: unprocessed messages and unsent reports return to the negotiation."""
        self.state.inbox = self.inbox
        self.state.reports, self.unsent = self.unsent, []
        return self.state

    # --- time -------------------------------------------------------------------------------

    async def until(self, ready: Callable[[], bool], summary: str) -> None:
        """Wait for ``ready``, but never past the negotiation's deadline."""
        if ready():
            return
        remaining = self.state.request.mandate.deadline - workflow.now()
        if remaining <= timedelta(0):
            raise Expired()
        await self.send_reports()
        if ready():  # a message may have arrived while the reports went out
            return
        try:
            await self._wait(ready, remaining, summary)
        except TimeoutError:
            raise Expired() from None

    async def _wait(self, ready: Callable[[], bool], timeout: timedelta, summary: str) -> None:
        """``wait_condition`` that sends, on the way, the reports of messages refused meanwhile
        (``urgent`` is set only in sealed negotiations, so older histories wait as they did)."""
        end = workflow.now() + timeout
        while True:
            await workflow.wait_condition(
                lambda: ready() or self.urgent,
                timeout=max(end - workflow.now(), timedelta(0)),
                timeout_summary=summary,
            )
            if ready():
                return
            self.urgent = False
            await self.send_reports()
            if ready():
                return

    async def until_or(self, ready: Callable[[], bool], at: datetime, summary: str) -> bool:
        """Wait for ``ready`` until ``at``: True when ready, False when ``at`` came first.

        The deadline still wins over both.
        """
        if ready():
            return True
        deadline = self.state.request.mandate.deadline
        if at >= deadline:
            await self.until(ready, summary)
            return True
        await self.send_reports()
        if ready():
            return True
        remaining = at - workflow.now()
        if remaining <= timedelta(0) and workflow.patched(NO_ZERO_LENGTH_WAIT):
            # Already past (a worker was down when it fell due). No zero-length wait: from
            # Python 3.12, asyncio.wait_for starts a timer for it, which 3.11 never did. Runs
            # recorded before this change keep their wait (and, on 3.12, its timer) on replay.
            return False
        try:
            await self._wait(ready, max(remaining, timedelta(0)), summary)
        except TimeoutError:
            return False
        return True

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

    async def notify(self, key: str, kind: str, to: Sequence[str], subject: str, body: str) -> None:
        """Send a notification once; a failure is reported on the timeline, not raised.

        The reports gathered so far go out meanwhile: one task of this workflow serves both.
        """
        failure, _ = await asyncio.gather(
            send_once(self.negotiation_id, key, kind, to, subject, body), self.send_reports()
        )
        if failure is not None:
            await self.report(timeline=[f"{kind} notification could not be delivered ({failure})"])

    def hand_over(self) -> dict[str, object]:
        """The ball is with the counterparty from now: their clock runs, ours stops.

        Returns the report part that tells the negotiation so.
        """
        self.state.counterparty_since = workflow.now()
        return {"awaiting_counterparty": True}

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

    # --- reviews ----------------------------------------------------------------------------

    def _review_input(self, offer: Offer) -> ReviewInput:
        assert self.state.policy is not None, "preparation sets the policy"
        return ReviewInput(
            negotiation_id=self.negotiation_id,
            terms_version=offer.version,
            terms=offer.terms,
            deal_type=self.state.request.deal_type,
            policy=self.state.policy,
        )

    async def review_legal(self, offer: Offer, summary: str) -> LegalFindings:
        """Legal review; when it cannot run, counsel decides in person."""
        await self.send_reports()  # a review may take long: the status shows what it is about
        try:
            found: LegalFindings = await workflow.execute_activity(
                legal_review, self._review_input(offer), summary=summary, **REVIEW
            )
        except ActivityError as err:
            return LegalFindings(
                findings=(f"legal review could not run ({_cause(err)}): counsel decides",),
                risk_score=50,
                counsel_must_sign=True,
                unacceptable=False,
            )
        return found

    async def review_finance(self, offer: Offer, summary: str) -> FinanceFindings:
        """Finance approval; when it cannot run, finance approves in person."""
        await self.send_reports()
        try:
            found: FinanceFindings = await workflow.execute_activity(
                finance_approval, self._review_input(offer), summary=summary, **REVIEW
            )
        except ActivityError as err:
            return FinanceFindings(
                approved=False,
                required_role=Role.FINANCE,
                required_authority=offer.terms.total_contract_value,
                payment_cost=Decimal(0),
                findings=(f"finance approval could not run ({_cause(err)}): finance decides",),
            )
        return found

    # --- counterparty -----------------------------------------------------------------------

    def _has_counterparty(self) -> bool:
        return any(e.counterparty is not None for e in self.inbox)

    async def next_response(
        self, allowed: set[CounterpartyAction], waiting_for: str
    ) -> CounterpartyResponse:
        """The counterparty's next usable message; stale or out-of-place ones are rejected with a reason."""
        while True:
            await self._wait_for_counterparty(waiting_for)
            envelope = next(e for e in self.inbox if e.counterparty is not None)
            self.inbox.remove(envelope)
            response = envelope.counterparty
            assert response is not None
            if response.message_id in self.state.processed_ids:
                self.took(response.message_id)
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
            self.took(response.message_id)
            return response

    async def _wait_for_counterparty(self, waiting_for: str) -> None:
        """Wait for the counterparty; remind them once if they stay silent for the policy's days."""
        summary = f"waiting for the counterparty: {waiting_for}"
        since = self.state.counterparty_since
        policy = self.state.policy
        if since is None or policy is None or self.state.counterparty_reminded == since:
            await self.until(self._has_counterparty, summary)
            return
        remind_at = since + timedelta(days=policy.counterparty_reminder_days)
        if await self.until_or(self._has_counterparty, remind_at, summary):
            return
        req = self.state.request
        self.state.counterparty_reminded = since
        await self.notify(
            f"counterparty-reminder/{since.isoformat()}",
            "reminder",
            [req.counterparty.email],
            "A gentle reminder",
            f"We are waiting for your answer in negotiation {req.negotiation_id} "
            f"({waiting_for}).\n",
        )
        await self.report(
            reminders=[Reminder(at=workflow.now(), to="counterparty")],
            timeline=[
                f"counterparty reminded after {policy.counterparty_reminder_days:g} days of silence"
            ],
        )
        await self.until(self._has_counterparty, summary)

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

    async def _notify_approvers(
        self, requests: Sequence[DecisionRequest], offer: Offer, suffix: str = ""
    ) -> None:
        # People may answer as soon as they read this: the negotiation must know the requests first.
        await self.send_reports()
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
                    f"{dr.request_id}{suffix}",
                    "decision_request",
                    to,
                    f"Decision needed: {dr.kind.value}",
                    body,
                )
            )
        await asyncio.gather(*sends)

    def _take_decision(self, open_ids: set[str]) -> Envelope | None:
        for envelope in self.inbox:
            if envelope.decision is not None and envelope.decision.request_id in open_ids:
                self.inbox.remove(envelope)
                return envelope
        return None

    def _not_authorised(self, envelope: Envelope, request: DecisionRequest) -> str | None:
        """Authority is checked where the decision takes effect, against the role cards,
        delegation and mandate, as of when the negotiation received it (and for the role the
        request had then: it may have escalated since). Sealed negotiations only: older ones
        trusted what their negotiation forwarded."""
        decision = envelope.decision
        if self.state.seal is None or decision is None:
            return None
        asked = request.model_copy(update={"role": envelope.role or request.role})
        req = self.state.request
        return rejection_reason(
            decision, asked, None, req.participants, req.mandate, envelope.received_at
        )

    def _record(self, envelope: Envelope, request: DecisionRequest) -> DecisionRecord:
        decision = envelope.decision
        assert decision is not None
        card = self.state.request.participant(decision.approver)
        authority = envelope.approver_authority
        if authority is None:  # forwarded by a negotiation from before delegation existed
            authority = card.authority_limit if card else Decimal(0)
        return DecisionRecord(
            request_id=request.request_id,
            kind=request.kind,
            role=envelope.role or request.role,
            approver=decision.approver,
            approver_authority=authority,
            verdict=decision.verdict,
            terms_version=request.terms_version,
            comment=decision.comment,
            at=workflow.now(),
            message_id=decision.message_id,
            acting_for=envelope.acting_for,
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
        the requests still open. An approval given on an earlier version stands when the change
        does not touch what it is about; every request is due, reminded and escalated on time.
        """
        needs, taken = await self._carry_standing(needs, offer)
        requests = [self._new_request(n, k, offer, suggestion, verdicts) for n, k in needs]
        batches = [requests] if together else [[r] for r in requests]
        for batch in batches:
            await self.report(requested=batch)
            await self._notify_approvers(batch, offer)
            by_id = {r.request_id: r for r in batch}
            open_ids = set(by_id)
            reminded: set[str] = set()
            while open_ids:
                await self._await_decision_on_the_clock(open_ids, by_id, reminded, offer)
                envelope = self._take_decision(open_ids)
                if envelope is None:
                    continue
                if envelope.message_id in self.state.processed_ids:
                    self.took(envelope.message_id)
                    continue
                decision = envelope.decision
                assert decision is not None
                self.state.processed_ids.append(decision.message_id)
                self.took(decision.message_id)
                refused = self._not_authorised(envelope, by_id[decision.request_id])
                if refused is not None:
                    await self.reject(decision.message_id, "human_decision", refused)
                    continue
                record = self._record(envelope, by_id[decision.request_id])
                open_ids.discard(decision.request_id)
                taken.append(record)
                if record.verdict == Verdict.APPROVE:
                    self.state.approvals.append(Approval(record=record, terms=offer.terms))
                await self.report(decided=[record])
                if record.verdict != Verdict.APPROVE:
                    if open_ids:
                        await self.report(withdrawn=sorted(open_ids))
                    return AskOutcome(False, record, decision.revised_terms, taken)
        return AskOutcome(True, decisions=taken)

    async def _carry_standing(
        self, needs: Sequence[tuple[Requirement, DecisionKind]], offer: Offer
    ) -> tuple[list[tuple[Requirement, DecisionKind]], list[DecisionRecord]]:
        """Approvals on earlier versions that still stand; the needs left to ask."""
        policy = self.state.policy
        if policy is None:
            return list(needs), []
        earlier = [
            (a.record, a.terms)
            for a in self.state.approvals
            if a.record.terms_version < offer.version
        ]
        left: list[tuple[Requirement, DecisionKind]] = []
        carried: list[DecisionRecord] = []
        for need, kind in needs:
            stands = (
                None
                if kind == DecisionKind.SIGNATURE
                else standing_approval(need.role, offer.terms, earlier, policy)
            )
            if stands is None or stands.approver_authority < need.min_authority:
                left.append((need, kind))
                continue
            self.state.asked += 1
            record = stands.model_copy(
                update={
                    "request_id": f"{self.movement.value[:3]}-{self.state.asked}-{kind.value}-{need.role.value}",
                    "kind": kind,
                    "terms_version": offer.version,
                    "carried_from": stands.carried_from or stands.terms_version,
                    "comment": f"approval of version {stands.terms_version} stands: nothing it is about changed",
                    "at": workflow.now(),
                    "message_id": None,
                }
            )
            self.state.approvals.append(Approval(record=record, terms=offer.terms))
            carried.append(record)
        if carried:
            await self.report(
                decided=carried,
                timeline=[
                    f"{r.role.value} approval of version {r.carried_from} stands for version {offer.version}"
                    for r in carried
                ],
            )
        return left, carried

    def _decision_ready(self, ids: set[str]) -> bool:
        return any(e.decision is not None and e.decision.request_id in ids for e in self.inbox)

    async def _await_decision_on_the_clock(
        self,
        open_ids: set[str],
        by_id: dict[str, DecisionRequest],
        reminded: set[str],
        offer: Offer,
    ) -> None:
        """Wait for a decision; remind at the due time, escalate at twice the due time."""
        while not self._decision_ready(open_ids):
            events: list[tuple[datetime, str, str]] = []
            for rid in sorted(open_ids):
                r = by_id[rid]
                clock = DecisionClock(
                    asked_at=r.created_at, due_in=(r.due_at or r.created_at) - r.created_at
                )
                if rid not in reminded:
                    events.append((clock.remind_at, "remind", rid))
                elif self._escalation_target(r) is not None:
                    events.append((clock.escalate_at, "escalate", rid))
            roles = ", ".join(sorted(by_id[i].role.value for i in open_ids))
            if not events:
                await self.until(lambda: self._decision_ready(open_ids), f"waiting for {roles}")
                return
            at, what, rid = min(events)
            if await self.until_or(
                lambda: self._decision_ready(open_ids), at, f"{what} {roles} at due time"
            ):
                return
            if what == "remind":
                reminded.add(rid)
                await self._remind(by_id[rid], offer)
            else:
                by_id[rid] = await self._escalate(by_id[rid], offer)
                reminded.discard(rid)

    async def _remind(self, request: DecisionRequest, offer: Offer) -> None:
        req = self.state.request
        need = Requirement(
            role=request.role, min_authority=request.required_authority, reason=request.reason
        )
        to = [p.email for p in self._holders(need)] or [p.email for p in req.holders(request.role)]
        if to:
            await self.notify(
                f"{request.request_id}/reminder/{request.role.value}",
                "reminder",
                to,
                f"Reminder: decision due ({request.kind.value})",
                f"Decision {request.request_id} on version {offer.version} of negotiation "
                f"{req.negotiation_id} was due at {request.due_at}. It escalates at twice that wait.\n",
            )
        await self.report(
            reminders=[
                Reminder(at=workflow.now(), to=request.role.value, request_id=request.request_id)
            ],
            timeline=[f"{request.role.value} reminded: {request.request_id} is due"],
        )

    def _escalation_target(self, request: DecisionRequest) -> Role | None:
        """The next authority named by the policy, when someone present holds it."""
        policy = self.state.policy
        to_role = policy.escalate_to.get(request.role) if policy else None
        if to_role is None or to_role == request.role:
            return None
        need = Requirement(role=to_role, min_authority=request.required_authority, reason="")
        return to_role if self._holders(need) else None

    async def _escalate(self, request: DecisionRequest, offer: Offer) -> DecisionRequest:
        """Hand the request to the next authority named by the policy."""
        to_role = self._escalation_target(request)
        assert to_role is not None
        now = workflow.now()
        due_in = (request.due_at or now) - request.created_at
        escalated = request.model_copy(
            update={
                "role": to_role,
                "created_at": now,
                "due_at": now + due_in,
                "reason": f"{request.reason}; escalated from {request.role.value}, no answer in time",
            }
        )
        await self.report(
            requested=[escalated],
            escalations=[
                Escalation(
                    at=now, request_id=request.request_id, from_role=request.role, to_role=to_role
                )
            ],
            timeline=[
                f"{request.request_id} escalated from {request.role.value} to {to_role.value}"
            ],
        )
        await self._notify_approvers([escalated], offer, suffix="/escalated")
        return escalated
