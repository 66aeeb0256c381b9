"""What every movement does the same way: take messages, ask people, keep the clocks.

Each movement workflow subclasses :class:`MovementPlayer`. The movement that plays is where a
message lands (clients address it by its derived id) and where it takes effect: its handlers hand
every message to the :class:`~negotiation.aggregate.Negotiation` it holds, which takes it into the
one inbox or records why not. The movement's ``status`` query is the negotiation's live status.

Three rules a new step must keep:

- wait with :meth:`MovementPlayer.until` / :meth:`MovementPlayer.until_or` (never a bare
  ``wait_condition``): they see the deadline and tell the negotiation when its pending decisions
  changed;
- record what happened on the aggregate (``self.negotiation``), never in a field of your own;
- send to people with :meth:`MovementPlayer.notify` (once per key, a failure noted, not raised).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.reviews import ReviewInput, finance_approval, legal_review
    from activities.timeouts import REVIEW
    from negotiation.aggregate import (
        COUNTERPARTY,
        DECISION,
        Negotiation,
        Refusal,
        ResponseReceipt,
    )
    from negotiation.clock import (
        DecisionClock,
        checkpoint_cadence,
        next_checkpoint,
        standing_approval,
    )
    from negotiation.decisions import explain
    from negotiation.models import (
        MAX_KIND,
        CounterpartyAction,
        CounterpartyResponse,
        DecisionKind,
        DecisionReceipt,
        DecisionRecord,
        DecisionRequest,
        Escalation,
        HumanDecision,
        Movement,
        NegotiationStatus,
        Reminder,
        Role,
        RoleCard,
        Verdict,
        shorten,
    )
    from negotiation.policy import Requirement
    from negotiation.reviews import FinanceFindings, LegalFindings
    from negotiation.terms import Offer, Party, Terms
    from workflows import metrics
    from workflows.intake import message_id_of, read_one
    from workflows.outbound import cause_of, describe, send_once
    from workflows.protocol import (
        COUNTERPARTY_SIGNAL,
        DECISION_SIGNAL,
        INTERNAL_SIGNALS,
        Approval,
        ForwardedBatch,
        MovementNews,
        ScoreState,
    )
    from workflows.seal import SEALED_DELIVER, SEALED_REPORTS, open_sealed, seal_message

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
    #: Whether the rhythm's checkpoints go out while this movement plays (not in closure).
    rhythm: ClassVar[bool] = True

    def __init__(self, state: ScoreState) -> None:
        self.state = state
        self.negotiation: Negotiation = state.negotiation
        self.expired = False
        # The pending decisions changed since the negotiation was last told (it shows them).
        self.news_due = False
        self._told = state.negotiation.pending_roles()  # what the negotiation shows already
        self._telling = False
        self._waiting_for = "starting"
        self._alarm: asyncio.Task[None] | None = None

    # --- messages in -------------------------------------------------------------------------

    @workflow.signal(dynamic=True)
    def receive(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal, whatever it holds: a client's message (taken or recorded as refused), a
        message the negotiation forwarded (sealed), or anything else (recorded with the reason).
        Never raised: a handler that raises fails the workflow task for ever."""
        kind = shorten(name, MAX_KIND)
        payload, unreadable = read_one(args)
        now = workflow.now()
        status = self.negotiation.status
        recorded = len(status.rejected_messages) + status.rejected_not_listed
        passed_on = self._take_signal(name, kind, payload, unreadable, now)
        if len(status.rejected_messages) + status.rejected_not_listed > recorded + passed_on:
            workflow.logger.info(
                "message rejected", extra={"kind": kind, "movement": self.movement.value}
            )
        self._changed()

    def _take_signal(
        self, name: str, kind: str, payload: Any, unreadable: str | None, now: datetime
    ) -> int:
        """Take one signal; the number of refusals the negotiation passed on with it (it logged
        those itself)."""
        if unreadable is not None:
            self.negotiation.reject(None, kind, unreadable, now)
        elif name == COUNTERPARTY_SIGNAL:
            self._counterparty(payload, now)
        elif name == DECISION_SIGNAL:
            self._decision(payload, now)
        elif name == SEALED_DELIVER and self.state.seal is not None:
            return self._forwarded(payload)
        elif name in INTERNAL_SIGNALS:
            self.negotiation.reject(
                message_id_of(payload),
                kind,
                f"internal signal {kind!r} refused: a movement takes only what its negotiation "
                "seals for it",
                now,
            )
        else:
            self.negotiation.reject(
                message_id_of(payload), kind, f"unknown signal {kind!r}: nothing takes it", now
            )
        return 0

    def _counterparty(self, payload: Any, now: datetime) -> None:
        try:
            response = CounterpartyResponse.model_validate(payload)
        except ValidationError as err:
            self.negotiation.reject(
                message_id_of(payload), COUNTERPARTY, f"malformed: {explain(err)}", now
            )
            return
        self.negotiation.take_counterparty_response(response, self.state.counterparty_takes(), now)

    def _decision(self, payload: Any, now: datetime) -> None:
        try:
            decision = HumanDecision.model_validate(payload)
        except ValidationError as err:
            self.negotiation.reject(
                message_id_of(payload), DECISION, f"malformed: {explain(err)}", now
            )
            return
        self._take_decision(decision, now)

    def _take_decision(self, decision: HumanDecision, now: datetime) -> DecisionReceipt | str:
        asked = self.negotiation.pending.get(decision.request_id)
        taken = self.negotiation.take_decision(decision, self.state.request, now)
        if asked is not None and isinstance(taken, DecisionReceipt):
            metrics.decision_waited(now - asked.created_at, asked.role.value, asked.kind.value)
        return taken

    def _forwarded(self, payload: object) -> int:
        context = self.state.seal
        assert context is not None
        scope = context.scope_for(self.movement.value, "down")
        opened = open_sealed(
            context, SEALED_DELIVER, scope, payload, context.delivered, ForwardedBatch
        )
        if isinstance(opened, str):
            self.negotiation.reject(message_id_of(payload), SEALED_DELIVER, opened, workflow.now())
            return 0
        batch, context.delivered = opened
        passed_on = sum(1 for m in batch.messages if m.rejected is not None)
        for message in batch.messages:
            if message.rejected is not None:
                self.negotiation.record_rejection(message.rejected)
            elif message.counterparty is not None:
                self.negotiation.take_counterparty_response(
                    message.counterparty, self.state.counterparty_takes(), message.received_at
                )
            elif message.decision is not None:
                # Authority as of when the negotiation received it (a delegation may end meanwhile).
                self._take_decision(message.decision, message.received_at)
        return passed_on

    @workflow.update(name="respond")
    def respond(self, response: CounterpartyResponse) -> ResponseReceipt:
        """A counterparty response, answered at once: taken in sequence, or why not."""
        taken = self.negotiation.take_counterparty_response(
            response, self.state.counterparty_takes(), workflow.now()
        )
        self._changed()
        if isinstance(taken, Refusal):  # the validator let it through: the state moved meanwhile
            raise ApplicationError(taken.reason, type=taken.code.value, non_retryable=True)
        return taken

    @respond.validator
    def _validate_respond(self, response: CounterpartyResponse) -> None:
        refusal = self.negotiation.counterparty_refusal(response, self.state.counterparty_takes())
        if refusal is not None:
            raise ApplicationError(refusal.reason, type=refusal.code.value, non_retryable=True)

    @workflow.update(name="decide")
    def decide(self, decision: HumanDecision) -> DecisionReceipt:
        """A person's decision, answered with its receipt once it is recorded."""
        taken = self._take_decision(decision, workflow.now())
        self._changed()
        if isinstance(taken, str):
            raise ApplicationError(taken, type="DecisionRejected", non_retryable=True)
        return taken

    @decide.validator
    def _validate_decide(self, decision: HumanDecision) -> None:
        reason = self.negotiation.decision_refusal(decision, self.state.request, workflow.now())
        if reason is not None:
            raise ValueError(reason)

    @workflow.query
    def status(self) -> NegotiationStatus:
        """The negotiation's live status (this movement holds it while it plays)."""
        return self.negotiation.status

    def _changed(self) -> None:
        if self.negotiation.pending_roles() != self._told and self.state.seal is not None:
            self.news_due = True
        self._details()

    def _details(self) -> None:
        workflow.set_current_details(
            f"{self.negotiation.details()}\n\nWaiting for: {self._waiting_for}"
        )

    # --- telling the negotiation ------------------------------------------------------------

    @property
    def negotiation_id(self) -> str:
        return self.state.request.negotiation_id

    async def tell(self) -> None:
        """Tell the negotiation its pending decisions changed (it shows them to operators and
        the inbox finds them by them); one message at a time, sealed."""
        if self._telling:
            await workflow.wait_condition(lambda: not self._telling)
        context = self.state.seal
        if not self.news_due or context is None:
            return
        self.news_due = False
        self._told = self.negotiation.pending_roles()
        news = MovementNews(
            movement=self.movement,
            round=self.state.round,
            playbook=self.state.playbook,
            pending=self.negotiation.status.pending_decisions,
            details=self.negotiation.details(),
        )
        context.reported += 1
        scope = context.scope_for(self.movement.value, "up")
        sealed = seal_message(
            context, SEALED_REPORTS, scope, context.reported, news.model_dump_json()
        )
        self._telling = True
        try:
            await workflow.get_external_workflow_handle(self.negotiation_id).signal(
                SEALED_REPORTS, sealed
            )
        finally:
            self._telling = False

    def note(self, text: str) -> None:
        """A plain sentence on the timeline (no deal terms)."""
        self.negotiation.note(text, workflow.now())
        self._details()

    def handed_back(self) -> ScoreState:
        """The state to hand back to the negotiation, the aggregate and its inbox with it."""
        return self.state

    def cancelled(self) -> ScoreState:
        """The state to hand back when the negotiation cancels this movement: what it holds goes
        back, so the close can record it."""
        return self.handed_back()

    # --- time ---------------------------------------------------------------------------------

    def start_clock(self) -> None:
        """One timer for every clock of the movement: the deadline, the counterparty's reminder
        and the rhythm's next checkpoint. It is re-armed only when a clock moves earlier, so a
        round that hands the ball over costs no timer. Started at the movement's first wait (or
        before), once: nothing before a wait can notice the deadline anyway."""
        if self._alarm is not None:
            return
        if workflow.now() >= self.state.request.mandate.deadline:
            self.expired = True
        if self.state.last_checkpoint is None:
            self.state.last_checkpoint = workflow.now()
        self._alarm = asyncio.create_task(self._keep_time())

    def _reminder_at(self) -> datetime | None:
        """When the silent counterparty is due a reminder about the current hand-over."""
        since = self.negotiation.counterparty_since
        policy = self.state.policy
        if policy is None or since is None or self.state.counterparty_reminded == since:
            return None
        return since + timedelta(days=policy.counterparty_reminder_days)

    def _checkpoint_at(self) -> datetime | None:
        """When the rhythm's next checkpoint is due (never in a movement without the rhythm)."""
        policy = self.state.policy
        last = self.state.last_checkpoint
        if not self.rhythm or policy is None or last is None:
            return None
        every, working_days = checkpoint_cadence(self.state.request, policy)
        return next_checkpoint(last, every, working_days)

    def _next_alarm(self) -> tuple[datetime, str]:
        due = [(self.state.request.mandate.deadline, "the deadline")]
        for at, what in ((self._reminder_at(), "reminder"), (self._checkpoint_at(), "checkpoint")):
            if at is not None:
                due.append((at, what))
        return min(due)

    async def _keep_time(self) -> None:
        while not self.expired:
            due, what = self._next_alarm()
            remaining = due - workflow.now()
            if remaining > timedelta(0) and await self._rearmed(due, remaining, what):
                continue  # a clock moved earlier
            await self._ring()

    async def _rearmed(self, due: datetime, remaining: timedelta, what: str) -> bool:
        """Sleep until ``due``; True when a clock moved earlier meanwhile (the timer is then
        cancelled and set anew)."""
        try:
            await workflow.wait_condition(
                lambda: self._next_alarm()[0] < due,
                timeout=remaining,
                timeout_summary=f"{what} at {due:%Y-%m-%d %H:%M} UTC",
            )
        except TimeoutError:
            return False
        return True

    async def _ring(self) -> None:
        """Whatever is due now: the deadline, a reminder to a silent counterparty, a checkpoint."""
        now = workflow.now()
        if now >= self.state.request.mandate.deadline:
            self.expired = True
            return
        remind_at, since = self._reminder_at(), self.negotiation.counterparty_since
        if remind_at is not None and since is not None and now >= remind_at:
            await self._remind_counterparty(since)
        checkpoint_at, last = self._checkpoint_at(), self.state.last_checkpoint
        if checkpoint_at is not None and last is not None and now >= checkpoint_at:
            await self._checkpoint(last)
            self.state.last_checkpoint = checkpoint_at

    async def until(self, ready: Callable[[], bool], summary: str) -> None:
        """Wait for ``ready``, but never past the negotiation's deadline."""
        await self._wait(ready, None, summary)

    async def until_or(self, ready: Callable[[], bool], at: datetime, summary: str) -> bool:
        """Wait for ``ready`` until ``at``: True when ready, False when ``at`` came first.

        The deadline still wins over both.
        """
        if at >= self.state.request.mandate.deadline:
            await self._wait(ready, None, summary)
            return True
        return await self._wait(ready, at, summary)

    async def _wait(self, ready: Callable[[], bool], at: datetime | None, summary: str) -> bool:
        """Wait for ``ready`` (until ``at``, when given: then with a timer of its own); raise
        :class:`Expired` at the deadline; tell the negotiation on the way when pending decisions
        changed. True when ready, False when ``at`` came first."""
        self._waiting_for = summary
        self.start_clock()
        while not ready():
            if self.expired:
                raise Expired()
            if self.news_due:
                await self.tell()
                continue
            self._details()
            woken = lambda: ready() or self.expired or self.news_due  # noqa: E731
            if at is None:
                await workflow.wait_condition(woken)
                continue
            remaining = at - workflow.now()
            if remaining <= timedelta(0):
                return False
            try:
                await workflow.wait_condition(woken, timeout=remaining, timeout_summary=summary)
            except TimeoutError:
                return ready()
        return True

    # --- offers ---------------------------------------------------------------------------

    def new_offer(self, party: Party, terms: Terms, note: str = "", *, shown: bool = True) -> Offer:
        """Number the next version of the terms; the status shows it at once, or (``shown``
        False, for ours) once :meth:`make_offer` has sent it."""
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
        if shown:
            self.negotiation.offer(offer, self.state.round)
        return offer

    async def make_offer(self, terms: Terms, note: str, headline: str) -> Offer:
        """Our next offer: numbered, sent to the counterparty, then shown and handed over. The
        status shows it once it is out, so whoever reads it there can answer it at once."""
        offer = self.new_offer(Party.US, terms, note, shown=False)
        await self.send_to_counterparty(offer, headline)
        self.negotiation.offer(offer, self.state.round)
        self.hand_over()
        return offer

    async def notify(self, key: str, kind: str, to: Sequence[str], subject: str, body: str) -> None:
        """Send a notification once; a failure is noted on the timeline, not raised."""
        failure = await send_once(self.negotiation_id, key, kind, to, subject, body)
        if failure is not None:
            self.note(f"{kind} notification could not be delivered ({failure})")

    def hand_over(self) -> None:
        """The ball is with the counterparty from now: their clock runs, ours stops."""
        self.negotiation.hand_over(workflow.now())

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

    async def _remind_counterparty(self, since: datetime) -> None:
        req = self.state.request
        policy = self.state.policy
        assert policy is not None
        self.state.counterparty_reminded = since
        await self.notify(
            f"counterparty-reminder/{since.isoformat()}",
            "reminder",
            [req.counterparty.email],
            "A gentle reminder",
            f"We are waiting for your answer in negotiation {req.negotiation_id}.\n",
        )
        self.negotiation.remind(
            Reminder(at=workflow.now(), to="counterparty"),
            f"counterparty reminded after {policy.counterparty_reminder_days:g} days of silence",
            workflow.now(),
        )

    async def _checkpoint(self, since: datetime) -> None:
        number = self.negotiation.checkpoint(workflow.now())
        req = self.state.request
        await self.notify(
            f"checkpoint/{number}",
            "checkpoint",
            [p.email for p in req.participants],
            f"Checkpoint {number}: {req.counterparty.name}",
            self._digest(since),
        )
        self.note(f"checkpoint {number} sent")

    def _digest(self, since: datetime) -> str:
        status = self.negotiation.status
        changes = [
            f"  - {e.text}"
            for e in status.timeline
            if e.at > since and not e.text.startswith("checkpoint ")
        ] or ["  - nothing new"]
        pending = [
            f"  - {p.role.value}: {p.kind.value} ({p.request_id}), due {p.due_at}"
            for p in status.pending_decisions
        ] or ["  - none"]
        return "\n".join(
            [
                f"Negotiation {status.negotiation_id} with {status.counterparty}",
                f"Movement: {status.movement.value}, round {status.round}",
                "Waiting for decisions:",
                *pending,
                f"Since the last checkpoint ({since:%Y-%m-%d %H:%M} UTC):",
                *changes,
            ]
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
        try:
            found: LegalFindings = await workflow.execute_activity(
                legal_review, self._review_input(offer), summary=summary, **REVIEW
            )
        except ActivityError as err:
            return LegalFindings(
                findings=(f"legal review could not run ({cause_of(err)}): counsel decides",),
                risk_score=50,
                counsel_must_sign=True,
                unacceptable=False,
            )
        return found

    async def review_finance(self, offer: Offer, summary: str) -> FinanceFindings:
        """Finance approval; when it cannot run, finance approves in person."""
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
                findings=(f"finance approval could not run ({cause_of(err)}): finance decides",),
            )
        return found

    # --- counterparty -----------------------------------------------------------------------

    async def next_response(
        self, allowed: frozenset[CounterpartyAction], waiting_for: str
    ) -> CounterpartyResponse:
        """The counterparty's next usable message. The negotiation took it in sequence and
        de-duplicated; one that this step cannot use is recorded with the reason."""
        while True:
            await self.until(self.negotiation.has_counterparty, f"the counterparty: {waiting_for}")
            response = self.negotiation.next_counterparty()
            assert response is not None
            if response.action not in allowed:
                choices = ", ".join(sorted(a.value for a in allowed))
                self.negotiation.reject(
                    response.message_id,
                    COUNTERPARTY,
                    f"'{response.action.value}' is not possible in the {self.movement.value} "
                    f"movement (expected one of: {choices})",
                    workflow.now(),
                )
                continue
            return response

    # --- people -----------------------------------------------------------------------------

    def _holders(self, need: Requirement) -> list[RoleCard]:
        return [
            p
            for p in self.state.request.participants
            if p.role == need.role and p.authority_limit >= need.min_authority
        ]

    def _request_id(self, kind: DecisionKind, role: Role) -> str:
        self.state.asked += 1
        return f"{self.movement.value[:3]}-{self.state.asked}-{kind.value}-{role.value}"

    def _new_request(
        self,
        need: Requirement,
        kind: DecisionKind,
        offer: Offer,
        suggestion: Terms | None,
        verdicts: tuple[Verdict, ...],
    ) -> DecisionRequest:
        policy = self.state.policy
        hours = (
            policy.tier_for(offer.terms.total_contract_value).decision_due_hours if policy else 24
        )
        now = workflow.now()
        return DecisionRequest(
            request_id=self._request_id(kind, need.role),
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
        await asyncio.gather(self.tell(), *sends)

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
        needs, taken = self._carry_standing(needs, offer)
        requests = [self._new_request(n, k, offer, suggestion, verdicts) for n, k in needs]
        batches = [requests] if together else [[r] for r in requests]
        for batch in batches:
            self.negotiation.ask(batch, workflow.now())
            self._changed()
            await self._notify_approvers(batch, offer)
            by_id = {r.request_id: r for r in batch}
            open_ids = set(by_id)
            reminded: set[str] = set()
            while open_ids:
                await self._await_decision_on_the_clock(open_ids, by_id, reminded, offer)
                envelope = self.negotiation.next_decision(open_ids)
                if envelope is None or envelope.record is None:
                    continue
                record = envelope.record
                open_ids.discard(record.request_id)
                taken.append(record)
                if record.verdict == Verdict.APPROVE:
                    self.state.approvals.append(Approval(record=record, terms=offer.terms))
                    continue
                if open_ids:
                    self.negotiation.withdraw(sorted(open_ids), workflow.now())
                    self._changed()
                revised = envelope.decision.revised_terms if envelope.decision else None
                return AskOutcome(False, record, revised, taken)
        return AskOutcome(True, decisions=taken)

    def _carry_standing(
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
            record = stands.model_copy(
                update={
                    "request_id": self._request_id(kind, need.role),
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
            self.negotiation.record_decided(carried, workflow.now())
            for r in carried:
                self.note(
                    f"{r.role.value} approval of version {r.carried_from} stands for version {offer.version}"
                )
        return left, carried

    async def _await_decision_on_the_clock(
        self,
        open_ids: set[str],
        by_id: dict[str, DecisionRequest],
        reminded: set[str],
        offer: Offer,
    ) -> None:
        """Wait for a decision; remind at the due time, escalate at twice the due time."""
        ready = lambda: self.negotiation.has_decision(open_ids)  # noqa: E731
        while not ready():
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
                await self.until(ready, f"a decision from {roles}")
                return
            at, what, rid = min(events)
            if await self.until_or(ready, at, f"{what} {roles} at due time"):
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
        self.negotiation.remind(
            Reminder(at=workflow.now(), to=request.role.value, request_id=request.request_id),
            f"{request.role.value} reminded: {request.request_id} is due",
            workflow.now(),
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
        self.negotiation.escalate(
            escalated,
            Escalation(
                at=now, request_id=request.request_id, from_role=request.role, to_role=to_role
            ),
            f"{request.request_id} escalated from {request.role.value} to {to_role.value}",
            now,
        )
        metrics.escalated(request.role.value, to_role.value)
        self._changed()
        await self._notify_approvers([escalated], offer, suffix="/escalated")
        return escalated
