"""The negotiation's rules in one place: what it took in, what it asked and decided, and why.

:class:`Negotiation` is the aggregate. It owns the status, the one inbox of messages received and
not yet acted on, the pending and decided requests, de-duplication by message id, the two waiting
clocks (ours and the counterparty's), closing, compliance and the KPIs. It is pure: no Temporal,
no clock (every method that needs the time is given it), no I/O. It is a pydantic model so that
it can travel: whichever workflow holds it (the negotiation between movements, the movement that
plays) is its only writer, and it passes from one to the next inside the score state.

Every message is either taken (a receipt), a repeat (the first receipt again) or refused with a
:class:`Refusal` that says why; refusals are recorded in the status, bounded.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from negotiation.decisions import acting_for, rejection_reason
from negotiation.kpis import assess_compliance, compute_kpis, deal_quality
from negotiation.models import (
    Compliance,
    CounterpartyAction,
    CounterpartyResponse,
    DecisionReceipt,
    DecisionRecord,
    DecisionRequest,
    Escalation,
    HumanDecision,
    Movement,
    MovementSpan,
    NegotiationRequest,
    NegotiationResult,
    NegotiationStatus,
    Outcome,
    PendingDecision,
    PlaybookName,
    ReceivedMessage,
    RejectedMessage,
    Reminder,
    RetrospectiveEntry,
    Review,
    TimelineEvent,
    Touchpoint,
)
from negotiation.policy import Policy, Requirement, requirements_for
from negotiation.terms import Offer, Party

#: A flood of bad messages keeps the status bounded: beyond this many, the oldest are counted.
MAX_REJECTED_LISTED = 200

#: Counterparty responses whose ids are remembered (for repeats answered with their receipt).
MAX_REMEMBERED = 100

COUNTERPARTY = "counterparty_response"
DECISION = "human_decision"

_ANSWERS = frozenset(
    {
        CounterpartyAction.ACCEPT,
        CounterpartyAction.COUNTER,
        CounterpartyAction.REJECT,
        CounterpartyAction.WITHDRAW,
    }
)
_SIGNING = frozenset(
    {CounterpartyAction.SIGN, CounterpartyAction.WITHDRAW, CounterpartyAction.REJECT}
)


def counterparty_actions(movement: Movement, agreed: bool) -> frozenset[CounterpartyAction]:
    """What the counterparty can usefully send while ``movement`` plays: answers to our offers
    until the terms are agreed, then the signature (or a withdrawal, or a refusal to sign).
    Preparation takes in what the opening will answer."""
    if agreed or movement == Movement.CLOSURE:
        return _SIGNING
    return _ANSWERS


class RefusalCode(StrEnum):
    """Why a message was not taken, as a caller can act on it."""

    CLOSED = "closed"
    STALE = "stale"
    NOT_POSSIBLE = "not_possible"
    MALFORMED = "malformed"
    REUSED = "reused"
    NOT_ACCEPTED = "not_accepted"


class Refusal(BaseModel):
    """A message not taken, and why (no deal terms in the reason)."""

    code: RefusalCode
    reason: str


class ResponseReceipt(BaseModel):
    """A counterparty response taken into the inbox, in sequence."""

    message_id: str
    sequence: int
    action: CounterpartyAction
    received_at: datetime
    kept_for_later: bool = Field(
        default=False,
        description="Sent as a signal to a negotiation started before answers at once: its "
        "rules apply when a movement takes it, and a refusal is recorded in its status.",
    )


class Envelope(BaseModel):
    """A message taken in and not yet acted on; a decision carries its record, made once."""

    counterparty: CounterpartyResponse | None = None
    decision: HumanDecision | None = None
    record: DecisionRecord | None = Field(
        default=None, description="The decision as recorded when it was taken in."
    )
    received_at: datetime

    @property
    def message_id(self) -> str:
        """The id of the message inside."""
        msg = self.counterparty or self.decision
        assert msg is not None
        return msg.message_id

    @property
    def kind(self) -> str:
        """The message's kind, as its signal is named."""
        return COUNTERPARTY if self.counterparty is not None else DECISION


def fingerprint(message: CounterpartyResponse | HumanDecision) -> str:
    """What a message carried, in 16 bytes: a repeat is a retry only when it carries the same."""
    return hashlib.sha256(message.model_dump_json().encode()).hexdigest()[:32]


class Negotiation(BaseModel):
    """The aggregate: the negotiation's status and every rule about what it takes."""

    status: NegotiationStatus
    inbox: list[Envelope] = Field(default_factory=list)
    seen: dict[str, str] = Field(
        default_factory=dict, description="Message id -> fingerprint of what it carried."
    )
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="Ids of the latest refused messages -> fingerprint (bounded like the list).",
    )
    receipts: dict[str, DecisionReceipt] = Field(default_factory=dict)
    responses: dict[str, ResponseReceipt] = Field(default_factory=dict)
    pending: dict[str, DecisionRequest] = Field(default_factory=dict)
    decided: dict[str, DecisionRecord] = Field(default_factory=dict)
    taken_sequence: int = Field(default=0, description="Highest sequence taken into the inbox.")
    counterparty_since: datetime | None = None
    internal_since: datetime | None = None
    concluded: Outcome | None = Field(
        default=None, description="The outcome as soon as a movement reached it (closing follows)."
    )

    @classmethod
    def open(cls, request: NegotiationRequest, now: datetime) -> Negotiation:
        """A negotiation just started, in preparation."""
        return cls(
            status=NegotiationStatus(
                negotiation_id=request.negotiation_id,
                deal_type=request.deal_type,
                counterparty=request.counterparty.name,
                currency=request.currency,
                playbook=request.playbook,
                movement=Movement.PREPARATION,
                started_at=now,
            )
        )

    # --- what is it -----------------------------------------------------------------------

    @property
    def closed(self) -> Outcome | None:
        """The outcome once one is reached: nothing more is taken."""
        return self.status.outcome or self.concluded

    def pending_roles(self) -> list[str]:
        """The roles a pending request waits for, sorted (the ``AwaitingDecision`` attribute)."""
        return sorted({r.role.value for r in self.pending.values()})

    def has_counterparty(self) -> bool:
        """A counterparty response is waiting in the inbox."""
        return any(e.counterparty is not None for e in self.inbox)

    def has_decision(self, request_ids: set[str]) -> bool:
        """A decision on one of ``request_ids`` is waiting in the inbox."""
        return any(e.record is not None and e.record.request_id in request_ids for e in self.inbox)

    # --- messages in ----------------------------------------------------------------------

    def _repeat_or_reuse(self, message: CounterpartyResponse | HumanDecision) -> Refusal | bool:
        known = self.seen.get(message.message_id) or self.refused.get(message.message_id)
        if known is None:
            return False
        if known != fingerprint(message):
            return Refusal(
                code=RefusalCode.REUSED,
                reason=f"message id {message.message_id} was already used for a different message",
            )
        return True

    def counterparty_refusal(
        self, response: CounterpartyResponse, takes: frozenset[CounterpartyAction]
    ) -> Refusal | None:
        """Why ``response`` cannot be taken now, or None (a repeat is not refused: its first
        receipt answers it)."""
        repeat = self._repeat_or_reuse(response)
        if isinstance(repeat, Refusal):
            return repeat
        if repeat:
            if response.message_id in self.responses:
                return None
            return Refusal(
                code=RefusalCode.NOT_ACCEPTED,
                reason=f"message {response.message_id} was already received and not accepted",
            )
        if self.closed is not None:
            return Refusal(
                code=RefusalCode.CLOSED, reason=f"the negotiation is closed ({self.closed.value})"
            )
        if response.sequence <= self.taken_sequence:
            return Refusal(
                code=RefusalCode.STALE,
                reason=f"stale: sequence {response.sequence} is not after {self.taken_sequence}",
            )
        if response.action not in takes:
            choices = ", ".join(sorted(a.value for a in takes))
            return Refusal(
                code=RefusalCode.NOT_POSSIBLE,
                reason=f"'{response.action.value}' is not possible in the "
                f"{self.status.movement.value} movement (expected one of: {choices})",
            )
        return None

    def take_counterparty_response(
        self, response: CounterpartyResponse, takes: frozenset[CounterpartyAction], now: datetime
    ) -> ResponseReceipt | Refusal:
        """Take a counterparty response into the inbox, or record why not."""
        known = self.responses.get(response.message_id)
        refusal = self.counterparty_refusal(response, takes)
        if refusal is None and known is not None:
            return known  # a retry of what was taken
        if refusal is not None:
            if refusal.code != RefusalCode.NOT_ACCEPTED:
                self._remember_refused(response)
                self.reject(response.message_id, COUNTERPARTY, refusal.reason, now)
            return refusal
        self.seen[response.message_id] = fingerprint(response)
        self._stop_counterparty_clock(now)
        self.inbox.append(Envelope(counterparty=response, received_at=now))
        self.taken_sequence = response.sequence
        self.status.last_sequence = max(self.status.last_sequence, response.sequence)
        self.status.last_received = ReceivedMessage(
            message_id=response.message_id, kind=COUNTERPARTY, at=now
        )
        receipt = ResponseReceipt(
            message_id=response.message_id,
            sequence=response.sequence,
            action=response.action,
            received_at=now,
        )
        self.responses[response.message_id] = receipt
        self._forget_old_ids()
        self._refresh(now)
        return receipt

    def _remember_refused(self, message: CounterpartyResponse | HumanDecision) -> None:
        """A refused message's id, so that the same message sent again is told it was refused
        (and another one under its id, that the id is taken); the latest ones only."""
        self.refused.setdefault(message.message_id, fingerprint(message))
        while len(self.refused) > MAX_REJECTED_LISTED:
            del self.refused[next(iter(self.refused))]

    def _forget_old_ids(self) -> None:
        """Keep the ids of the latest responses only: the state travels to every movement and
        across continue-as-new, and an older id, sent again, is refused as stale by its sequence."""
        while len(self.responses) > MAX_REMEMBERED:
            oldest = next(iter(self.responses))
            del self.responses[oldest]
            self.seen.pop(oldest, None)

    def decision_refusal(
        self, decision: HumanDecision, request: NegotiationRequest, now: datetime
    ) -> str | None:
        """Why ``decision`` cannot be taken, or None. Authority is checked here, where it takes
        effect: role cards, delegation in force at ``now`` and the mandate."""
        repeat = self._repeat_or_reuse(decision)
        if isinstance(repeat, Refusal):
            return repeat.reason
        if repeat:
            if decision.message_id in self.receipts:
                return None
            return f"message {decision.message_id} was already received and not accepted"
        if self.closed is not None:
            return f"the negotiation is closed ({self.closed.value})"
        taken = self.decided.get(decision.request_id)
        return rejection_reason(
            decision,
            self.pending.get(decision.request_id),
            taken,
            request.participants,
            request.mandate,
            now,
        )

    def take_decision(
        self, decision: HumanDecision, request: NegotiationRequest, now: datetime
    ) -> DecisionReceipt | str:
        """Take a person's decision: recorded once, here, and queued for the movement to act on;
        or the reason it cannot be (recorded as a rejection)."""
        known = self.receipts.get(decision.message_id)
        if known is not None:
            return known
        reason = self.decision_refusal(decision, request, now)
        if reason is not None:
            if decision.message_id not in self.refused:
                self._remember_refused(decision)
            self.reject(decision.message_id, DECISION, reason, now)
            return reason
        asked = self.pending.pop(decision.request_id)
        card = request.participant(decision.approver)
        in_own_right = (
            card is not None
            and card.role == asked.role
            and card.authority_limit >= asked.required_authority
        )
        delegator = (
            None
            if in_own_right
            else acting_for(decision.approver, asked, request.participants, now)
        )
        decider = delegator or card
        record = DecisionRecord(
            request_id=asked.request_id,
            kind=asked.kind,
            role=asked.role,
            approver=decision.approver,
            approver_authority=decider.authority_limit if decider else Decimal(0),
            verdict=decision.verdict,
            terms_version=asked.terms_version,
            comment=decision.comment,
            at=now,
            message_id=decision.message_id,
            acting_for=delegator.name if delegator else None,
        )
        self.seen[decision.message_id] = fingerprint(decision)
        self.decided[asked.request_id] = record
        self.status.decisions.append(record)
        self.status.last_received = ReceivedMessage(
            message_id=decision.message_id, kind=DECISION, at=now
        )
        self.inbox.append(Envelope(decision=decision, record=record, received_at=now))
        receipt = DecisionReceipt(
            request_id=asked.request_id,
            approver=decision.approver,
            verdict=decision.verdict,
            terms_version=asked.terms_version,
            recorded_at=now,
        )
        self.receipts[decision.message_id] = receipt
        self._refresh(now)
        return receipt

    def reject(self, message_id: str | None, kind: str, reason: str, now: datetime) -> None:
        """Record a message that cannot be used, with the reason."""
        self.record_rejection(
            RejectedMessage(message_id=message_id, kind=kind, reason=reason, at=now)
        )

    def record_rejection(self, rejected: RejectedMessage) -> None:
        """List a rejection; past the bound, the oldest give way and are counted (a flood of bad
        messages must not grow the status past what a query can answer)."""
        listed = self.status.rejected_messages
        listed.append(rejected)
        if len(listed) > MAX_REJECTED_LISTED:
            del listed[0]
            self.status.rejected_not_listed += 1

    # --- messages out of the inbox -------------------------------------------------------

    def next_counterparty(self) -> CounterpartyResponse | None:
        """The oldest counterparty response waiting, taken out of the inbox."""
        for envelope in self.inbox:
            if envelope.counterparty is not None:
                self.inbox.remove(envelope)
                self._queued()
                return envelope.counterparty
        return None

    def next_decision(self, request_ids: set[str]) -> Envelope | None:
        """The oldest decision on one of ``request_ids``, taken out of the inbox."""
        for envelope in self.inbox:
            if envelope.record is not None and envelope.record.request_id in request_ids:
                self.inbox.remove(envelope)
                self._queued()
                return envelope
        return None

    # --- what the movements do -----------------------------------------------------------

    def enter(self, movement: Movement, now: datetime) -> None:
        """A movement starts playing."""
        self.status.movement = movement
        self.status.movements.append(MovementSpan(movement=movement, started_at=now))
        self._refresh(now)

    def leave(self, movement: Movement, now: datetime) -> None:
        """A movement has ended."""
        span = self.status.movements[-1] if self.status.movements else None
        if span is not None and span.movement == movement and span.ended_at is None:
            span.ended_at = now

    def note(self, text: str, now: datetime) -> None:
        """A plain sentence on the timeline (no deal terms)."""
        self.status.timeline.append(TimelineEvent(at=now, movement=self.status.movement, text=text))

    def choose(self, playbook: PlaybookName) -> None:
        """The playbook preparation chose."""
        self.status.playbook = playbook

    def offer(self, offer: Offer, round_: int) -> None:
        """An offer made, by us or by them."""
        status = self.status
        status.round = round_
        status.offers.append(offer)
        if offer.party == Party.US:
            status.our_terms = offer
        else:
            status.their_terms = offer

    def hand_over(self, now: datetime) -> None:
        """The ball is with the counterparty from now: their clock runs (unless they have
        answered already, while our offer went out)."""
        if self.counterparty_since is None and not self.has_counterparty():
            self.counterparty_since = now

    def review(self, review: Review) -> None:
        """A legal or finance review done."""
        self.status.reviews.append(review)

    def remind(self, reminder: Reminder, text: str, now: datetime) -> None:
        """A reminder sent."""
        self.status.reminders.append(reminder)
        self.note(text, now)

    def touch(self, touchpoint: Touchpoint, text: str, now: datetime) -> None:
        """A check-in proposed to the counterparty."""
        self.status.touchpoints.append(touchpoint)
        self.note(text, now)

    def checkpoint(self, now: datetime) -> int:
        """A checkpoint digest went out; its number."""
        self.status.checkpoints.append(now)
        return len(self.status.checkpoints)

    def ask(self, requests: list[DecisionRequest], now: datetime) -> None:
        """Decision requests put to people."""
        for r in requests:
            if r.request_id not in self.decided:
                self.pending[r.request_id] = r
        self._refresh(now)

    def withdraw(self, request_ids: list[str], now: datetime) -> None:
        """Requests no longer needed."""
        for rid in request_ids:
            self.pending.pop(rid, None)
        self._refresh(now)

    def escalate(
        self, escalated: DecisionRequest, escalation: Escalation, text: str, now: datetime
    ) -> None:
        """A request handed to the next authority."""
        if escalated.request_id in self.pending:
            self.pending[escalated.request_id] = escalated
        self.status.escalations.append(escalation)
        self.note(text, now)
        self._refresh(now)

    def record_decided(self, records: list[DecisionRecord], now: datetime) -> None:
        """Decisions made without a message (an approval that stands, a signature by policy)."""
        for record in records:
            self.pending.pop(record.request_id, None)
            self.decided[record.request_id] = record
            self.status.decisions.append(record)
        self._refresh(now)

    def conclude(self, outcome: Outcome) -> None:
        """A movement reached ``outcome``: from now nothing more is taken in."""
        self.concluded = outcome

    # --- the end --------------------------------------------------------------------------

    def close(self, outcome: Outcome, reason: str, agreed: Offer | None, now: datetime) -> None:
        """The business end: outcome, clocks stopped, messages never used recorded as such."""
        status = self.status
        status.outcome = self.concluded = outcome
        status.outcome_reason = reason
        status.closed_at = now
        if status.movements and status.movements[-1].ended_at is None:
            status.movements[-1].ended_at = now
        status.agreed_terms = agreed if outcome == Outcome.AGREED else None
        for envelope in self.inbox:
            self.reject(
                envelope.message_id,
                envelope.kind,
                f"the negotiation closed ({outcome.value}) before it could be used",
                now,
            )
        self.inbox = []
        self.pending.clear()
        self._stop_counterparty_clock(now)
        self._refresh(now)

    def result(
        self,
        request: NegotiationRequest,
        close: Closing,
        retrospective: list[RetrospectiveEntry],
        *,
        provisional: bool,
    ) -> NegotiationResult:
        """The result and its KPIs, from the outcome and what the retrospective has so far."""
        status = self.status
        assert status.outcome is not None and status.closed_at is not None
        agreed = status.agreed_terms
        quality = None
        compliance = Compliance(compliant=True)
        if agreed is not None:
            quality = deal_quality(agreed.terms, request.mandate, request.deal_type, close.policy)
            compliance = self.compliance(request, close)
        entries = status.retrospective or retrospective
        answers = [e.satisfaction for e in entries if e.satisfaction is not None]
        kpis = compute_kpis(
            started_at=status.started_at,
            closed_at=status.closed_at,
            spans=status.movements,
            rounds=close.rounds,
            quality=quality,
            decisions=status.decisions,
            automated_responses=close.automated_responses,
            compliance=compliance,
            satisfaction=round(sum(answers) / len(answers), 2) if answers else None,
        ).model_copy(
            update={
                "internal_wait_seconds": status.internal_wait_seconds,
                "counterparty_wait_seconds": status.counterparty_wait_seconds,
                "reminders": len(status.reminders),
                "escalations": len(status.escalations),
                "retrospective_answers": len(answers),
                "retrospective_missing": sum(1 for e in status.retrospective if e.missing),
            }
        )
        cycle = kpis.cycle_time_seconds
        if cycle > 0:
            waiting = kpis.internal_wait_seconds + kpis.counterparty_wait_seconds
            kpis.value_adding_share = round(max(0.0, cycle - waiting) / cycle, 4)
        return NegotiationResult(
            negotiation_id=status.negotiation_id,
            outcome=status.outcome,
            outcome_reason=status.outcome_reason,
            playbook=status.playbook,
            deal_type=request.deal_type,
            agreed_terms=agreed,
            kpis=kpis,
            status=status,
            provisional=provisional,
        )

    def compliance(self, request: NegotiationRequest, close: Closing) -> Compliance:
        """Deviations approved before we committed; sign-offs and signature before signing."""
        agreed = self.status.agreed_terms
        assert agreed is not None
        deviations = requirements_for(agreed.terms, request, close.policy, PlaybookName.AUTOMATED)
        before_commit = assess_compliance(
            deviations, self.status.decisions, agreed.version, close.committed_at
        )
        before_signing = assess_compliance(
            close.closure_requirements, self.status.decisions, agreed.version, close.signed_at
        )
        violations = before_commit.violations + before_signing.violations
        return Compliance(compliant=not violations, violations=violations)

    # --- the clocks and the derived parts of the status ---------------------------------

    def _stop_counterparty_clock(self, now: datetime) -> None:
        if self.counterparty_since is not None:
            waited = (now - self.counterparty_since).total_seconds()
            self.status.counterparty_wait_seconds += waited
            self.counterparty_since = None

    def _tick_internal_clock(self, now: datetime) -> None:
        """People owe an answer while any decision request is open."""
        if self.pending and self.internal_since is None:
            self.internal_since = now
        elif not self.pending and self.internal_since is not None:
            self.status.internal_wait_seconds += (now - self.internal_since).total_seconds()
            self.internal_since = None

    def _queued(self) -> None:
        self.status.queued_messages = len(self.inbox)

    def _refresh(self, now: datetime) -> None:
        self._tick_internal_clock(now)
        self.status.pending_decisions = [
            PendingDecision(
                request_id=r.request_id,
                kind=r.kind,
                role=r.role,
                required_authority=r.required_authority,
                reason=r.reason,
                terms_version=r.terms_version,
                due_at=r.due_at,
                created_at=r.created_at,
                movement=r.movement,
            )
            for r in self.pending.values()
        ]
        self._queued()

    def details(self) -> str:
        """What an operator reads first in the Web UI (markdown, no deal terms)."""
        status = self.status
        awaiting = (
            ", ".join(f"{r.role.value} ({r.kind.value})" for r in self.pending.values()) or "nobody"
        )
        last = status.timeline[-1].text if status.timeline else "started"
        return (
            f"**{status.counterparty}** · {status.deal_type.value} · "
            f"playbook **{status.playbook.value if status.playbook else 'choosing'}**\n\n"
            f"Movement **{status.movement.value}**, round {status.round}; "
            f"outcome **{status.outcome.value if status.outcome else 'open'}**\n\n"
            f"Awaiting: {awaiting}\n\nLast: {last}"
        )


class Closing(BaseModel):
    """What the KPIs and compliance need from the play beside the aggregate."""

    policy: Policy = Field(default_factory=Policy)
    rounds: int = 0
    automated_responses: int = 0
    committed_at: datetime | None = None
    signed_at: datetime | None = None
    closure_requirements: list[Requirement] = Field(default_factory=list)
