"""[Legacy path, release 4: marked for removal with workflows/legacy/] The negotiation: one durable workflow playing four movements as child workflows.

Clients know only the negotiation id. Every message comes here first: it is validated, de-duplicated
by message id and kept in an inbox until the movement playing is ready for it; bad messages are
recorded with the reason, never raised inside a handler. Movements report back what they did, so
``status`` always tells the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from negotiation.clock import checkpoint_cadence, next_checkpoint
    from negotiation.decisions import acting_for, explain, rejection_reason
    from negotiation.kpis import assess_compliance, compute_kpis, deal_quality
    from negotiation.models import (
        MAX_KIND,
        Compliance,
        CounterpartyResponse,
        DecisionReceipt,
        DecisionRecord,
        DecisionRequest,
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
        RetrospectiveAnswer,
        RetrospectiveEntry,
        TimelineEvent,
        shorten,
    )
    from negotiation.policy import Policy, requirements_for
    from negotiation.terms import Party
    from workflows import metrics
    from workflows import search_attributes as sa
    from workflows.intake import message_id_of, read_one
    from workflows.legacy.closure import LegacyClosureMovement
    from workflows.legacy.development import LegacyDevelopmentMovement
    from workflows.legacy.movement import MovementPlayer, send_once
    from workflows.legacy.opening import LegacyOpeningMovement
    from workflows.legacy.preparation import LegacyPreparationMovement
    from workflows.legacy.protocol import (
        COUNTERPARTY_SIGNAL,
        DECISION_SIGNAL,
        DELIVER_SIGNAL,
        INTERNAL_SIGNALS,
        REPORT_SIGNAL,
        REPORTS_SIGNAL,
        SEALED_CHANNEL,
        Envelope,
        MovementReport,
        MovementReports,
        ScoreState,
    )
    from workflows.seal import (
        SEALED_DELIVER,
        SEALED_REPORTS,
        SealContext,
        choose_key,
        open_sealed,
        seal_message,
    )

#: A flood of bad messages keeps the status bounded: beyond this many, the oldest are counted.
MAX_REJECTED_LISTED = 200

#: Which messages each movement takes; the others wait in the inbox.
_TAKES: dict[Movement, frozenset[str]] = {
    Movement.PREPARATION: frozenset(),
    Movement.OPENING: frozenset({"counterparty"}),
    Movement.DEVELOPMENT: frozenset({"counterparty", "decision"}),
    Movement.CLOSURE: frozenset({"counterparty", "decision"}),
}

_SUMMARIES = {
    Movement.PREPARATION: "Preparation: policy, playbook, role cards",
    Movement.OPENING: "Opening: opening offer and first response",
    Movement.DEVELOPMENT: "Development: counteroffer rounds",
    Movement.CLOSURE: "Closure: sign-off, signatures, hand-off",
}


def _kind(envelope: Envelope) -> str:
    return "counterparty" if envelope.counterparty is not None else "decision"


def _label(playbook: PlaybookName | None) -> str:
    """A playbook as a metric label: ``none`` before preparation chose one."""
    return playbook.value if playbook is not None else "none"


def _fingerprint(message: CounterpartyResponse | HumanDecision) -> str:
    return hashlib.sha256(message.model_dump_json().encode()).hexdigest()


def _reused(message_id: str) -> str:
    return f"message id {message_id} was already used for a different message"


class LegacyNegotiation:
    """A negotiation from preparation to closure, with its messages, status and KPIs."""

    def __init__(self, request: NegotiationRequest) -> None:
        now = workflow.now()
        self._request = request
        self._status = NegotiationStatus(
            negotiation_id=request.negotiation_id,
            deal_type=request.deal_type,
            counterparty=request.counterparty.name,
            currency=request.currency,
            playbook=request.playbook,
            movement=Movement.PREPARATION,
            started_at=now,
        )
        self._policy: Policy | None = None
        self._inbox: list[Envelope] = []
        # Message ids taken in, with a fingerprint of what each carried: a repeat is a retry only
        # when it carries the same.
        self._seen: dict[str, str] = {}
        self._receipts: dict[str, DecisionReceipt] = {}
        self._pending: dict[str, DecisionRequest] = {}
        self._decided: dict[str, DecisionRecord] = {}
        self._attributes: dict[str, Any] = {}
        self._counterparty_since: datetime | None = None
        self._internal_since: datetime | None = None
        self._retro_answers: dict[str, RetrospectiveEntry] = {}
        self._retro_receipts: dict[str, RetrospectiveEntry] = {}
        # The score as it stood at the outcome, for the result read during the retrospective.
        self._closed: ScoreState | None = None
        # Whether this negotiation seals its internal messages (decided in its first task).
        self._sealed_channel: bool | None = None
        # A sealed message being forwarded, in a task of its own (see _send).
        self._sending: tuple[asyncio.Task[None], Envelope] | None = None
        # The sealed channel to the movement playing (None in negotiations from before it), with
        # the counters of the last message sent to it and of its last report taken.
        self._seal: SealContext | None = None
        # Ids of messages forwarded to the movement playing and not yet acted on there.
        self._held: set[str] = set()
        self._last_sequence = 0

    async def run(self, request: NegotiationRequest) -> NegotiationResult:
        state = ScoreState(request=request)
        if self._sealed():
            key_id = choose_key(workflow.info().start_time)
            if key_id is None:  # fails this task until the worker is given its seal keyring
                raise RuntimeError("this worker holds no seal keys (FITNEST_SEAL_KEY_FILE)")
            self._seal = state.seal = SealContext(
                key_id=key_id, scope=f"{request.negotiation_id}:{workflow.info().run_id}"
            )
        self._upsert(
            (sa.COUNTERPARTY, request.counterparty.name), (sa.DEAL_TYPE, request.deal_type.value)
        )
        rhythm = asyncio.create_task(self._rhythm())
        try:
            state = await self._play(LegacyPreparationMovement, state)
            self._policy = state.policy
            bound = request.mandate.total_contract_value
            self._upsert(
                (
                    sa.DEAL_VALUE,
                    self._tier_floor(self._policy or Policy(), max(bound.target, bound.walk_away)),
                ),
                (sa.PLAYBOOK, state.playbook.value if state.playbook else None),
            )
            metrics.negotiation_started(_label(state.playbook), request.deal_type.value)
            state = await self._play(LegacyOpeningMovement, state)
            if state.outcome is None and state.agreed is None:
                state = await self._play(LegacyDevelopmentMovement, state)
            rhythm.cancel()  # the rhythm stops at closure
            if state.outcome is None and state.agreed is not None:
                state = await self._play(LegacyClosureMovement, state)
        except asyncio.CancelledError:
            state.close(Outcome.CANCELLED, "cancelled by an operator")
        rhythm.cancel()
        self._close(state)
        self._closed = state
        await self._retrospective(state.policy or Policy())
        return await self._result(state)

    def _sealed(self) -> bool:
        """Whether this negotiation seals its internal messages; decided in its first task (a
        negotiation from before the sealed channel replays without the marker and stays as it was)."""
        if self._sealed_channel is None:
            self._sealed_channel = workflow.patched(SEALED_CHANNEL)
        return self._sealed_channel

    # --- messages from outside ----------------------------------------------------------------

    def receive(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal, whatever it holds (no input, two, bytes that are no JSON, a payload the
        worker could not decrypt): taken, or recorded as rejected with a bounded reason. Never
        raised: a handler that raises fails the workflow task for ever."""
        kind = shorten(name, MAX_KIND)
        payload, unreadable = read_one(args)
        if unreadable is not None:
            self._reject(None, kind, unreadable)
        elif name == COUNTERPARTY_SIGNAL:
            self._on_counterparty(payload)
        elif name == DECISION_SIGNAL:
            self._on_decision(payload)
        elif name == SEALED_REPORTS and self._seal is not None:
            self._on_sealed_reports(payload)
        elif name in (REPORT_SIGNAL, REPORTS_SIGNAL) and not self._sealed():
            self._on_unsealed_reports(name, payload)  # a negotiation from before the seal
        elif name in INTERNAL_SIGNALS:
            self._reject(
                payload,
                kind,
                f"internal signal {kind!r} refused: the negotiation and its movements take only "
                "what they seal for each other",
            )
        else:
            self._reject(payload, kind, f"unknown signal {kind!r}: nothing takes it")

    def _on_counterparty(self, payload: Any) -> None:
        """A counterparty message; kept until a movement takes it, or rejected with a reason."""
        try:
            response = CounterpartyResponse.model_validate(payload)
        except ValidationError as err:
            self._reject(payload, COUNTERPARTY_SIGNAL, f"malformed: {explain(err)}")
            return
        if self._repeated(response, payload, COUNTERPARTY_SIGNAL):
            return
        if self._status.outcome is not None:
            self._reject(
                payload,
                COUNTERPARTY_SIGNAL,
                f"the negotiation is closed ({self._status.outcome})",
            )
            return
        if self._seal is not None and response.sequence <= self._last_sequence:
            # The movement would refuse it too (its last sequence only grows): say so at once.
            self._reject(
                payload,
                COUNTERPARTY_SIGNAL,
                f"stale: sequence {response.sequence} is not after {self._last_sequence}",
            )
            return
        self._stop_counterparty_clock(workflow.now())
        self._inbox.append(Envelope(counterparty=response, received_at=workflow.now()))
        self._status.last_sequence = max(self._status.last_sequence, response.sequence)
        self._status.last_received = ReceivedMessage(
            message_id=response.message_id, kind=COUNTERPARTY_SIGNAL, at=workflow.now()
        )
        self._refresh()

    def _on_decision(self, payload: Any) -> None:
        """A person's decision, fire-and-forget; one that cannot be taken is recorded with the reason."""
        try:
            decision = HumanDecision.model_validate(payload)
        except ValidationError as err:
            self._reject(payload, DECISION_SIGNAL, f"malformed: {explain(err)}")
            return
        if self._repeated(decision, payload, DECISION_SIGNAL):
            return
        reason = self._why_not(decision)
        if reason is not None:
            self._reject(payload, DECISION_SIGNAL, reason)
            return
        self._accept(decision)

    def decide(self, decision: HumanDecision) -> DecisionReceipt:
        """A person's decision, answered with a receipt once it is accepted."""
        known = self._receipts.get(decision.message_id)
        return known if known is not None else self._accept(decision)

    def _validate_decide(self, decision: HumanDecision) -> None:
        known = self._seen.get(decision.message_id)
        if known is not None and known != _fingerprint(decision):
            raise ValueError(_reused(decision.message_id))
        if decision.message_id in self._receipts:
            return  # a repeat: the handler answers with the first receipt
        if decision.message_id in self._seen:
            raise ValueError(f"message {decision.message_id} was already received and not accepted")
        reason = self._why_not(decision)
        if reason is not None:
            raise ValueError(reason)

    def retrospective(self, answer: RetrospectiveAnswer) -> RetrospectiveEntry:
        """A participant's retrospective, taken while the window is open."""
        known = self._retro_receipts.get(answer.message_id)
        if known is not None:
            return known
        entry = RetrospectiveEntry(
            participant=answer.participant,
            satisfaction=answer.satisfaction,
            note=answer.note,
            at=workflow.now(),
        )
        self._retro_answers[answer.participant] = entry
        self._retro_receipts[answer.message_id] = entry
        return entry

    def _validate_retrospective(self, answer: RetrospectiveAnswer) -> None:
        if answer.message_id in self._retro_receipts:
            return
        until = self._status.retrospective_until
        if until is None or workflow.now() >= until:
            raise ValueError("the retrospective is not open")
        if self._request.participant(answer.participant) is None:
            raise ValueError(f"{answer.participant} is not a participant in this negotiation")
        if answer.participant in self._retro_answers:
            raise ValueError(f"{answer.participant} has already answered the retrospective")

    def status(self) -> NegotiationStatus:
        """The negotiation as it stands."""
        return self._status

    def result_so_far(self) -> NegotiationResult | None:
        """The result while the retrospective window is open (``provisional``: satisfaction may
        still change); None before the outcome. Reports need not wait out the window."""
        if self._closed is None:
            return None
        return self._outcome_report(self._closed, provisional=True)

    # --- messages from the movements -----------------------------------------------------------

    def _on_sealed_reports(self, payload: Any) -> None:
        """A batch of reports from the movement playing, taken only when its seal holds."""
        assert self._seal is not None
        scope = self._seal.scope_for(self._status.movement.value, "up")
        opened = open_sealed(
            self._seal, SEALED_REPORTS, scope, payload, self._seal.reported, MovementReports
        )
        if isinstance(opened, str):
            self._reject(payload, SEALED_REPORTS, opened)
            return
        batch, self._seal.reported = opened
        for report in batch.reports:
            self._fold(report)

    def _on_unsealed_reports(self, name: str, payload: Any) -> None:
        """Reports of a negotiation started before the sealed channel (release 1 sent them one
        at a time)."""
        try:
            batch = (
                MovementReports(reports=[MovementReport.model_validate(payload)])
                if name == REPORT_SIGNAL
                else MovementReports.model_validate(payload)
            )
        except ValidationError as err:
            self._reject(payload, name, f"malformed: {explain(err)}")
            return
        for report in batch.reports:
            self._fold(report)

    def _fold(self, report: MovementReport) -> None:
        now = report.at or workflow.now()
        status = self._status
        if report.playbook is not None:
            status.playbook = report.playbook
        if report.round is not None:
            status.round = report.round
        for offer in report.offers:
            status.offers.append(offer)
            if offer.party == Party.US:
                status.our_terms = offer
            else:
                status.their_terms = offer
        for request in report.requested:
            if request.request_id not in self._decided:  # a decision may cross an escalation
                self._pending[request.request_id] = request
        for request_id in report.withdrawn:
            self._pending.pop(request_id, None)
        for record in report.decided:
            self._pending.pop(record.request_id, None)
            self._decided[record.request_id] = record
            self._record_decision(record)
        status.reviews.extend(report.reviews)
        for rejected in report.rejected:
            self._record_rejection(rejected)
            self._held.discard(rejected.message_id or "")
        self._held.difference_update(report.taken)
        if report.last_sequence is not None:
            self._last_sequence = max(self._last_sequence, report.last_sequence)
        status.reminders.extend(report.reminders)
        status.escalations.extend(report.escalations)
        for escalation in report.escalations:
            metrics.escalated(escalation.from_role.value, escalation.to_role.value)
        status.touchpoints.extend(report.touchpoints)
        if report.awaiting_counterparty and self._counterparty_since is None:
            self._counterparty_since = now
        status.timeline.extend(
            TimelineEvent(at=now, movement=report.movement, text=t) for t in report.timeline
        )
        self._refresh()

    # --- the movements --------------------------------------------------------------------------

    async def _play(self, movement_wf: type[MovementPlayer], state: ScoreState) -> ScoreState:
        """Run one movement as a child workflow, forwarding the messages it takes while it plays."""
        movement = movement_wf.movement
        self._enter(movement)
        state.inbox = self._take(movement)
        if self._seal is not None:  # each movement's channel counts from zero
            self._seal.delivered = self._seal.reported = 0
            state.seal = self._seal.model_copy()
        child_id = f"{self._request.negotiation_id}/{movement.value}"
        handle = await workflow.start_child_workflow(
            movement_wf.run,  # type: ignore[attr-defined]
            state,
            id=child_id,
            static_summary=_SUMMARIES[movement],
        )
        target = workflow.get_external_workflow_handle(child_id)
        try:
            await self._forward(movement, handle, target)
            result: ScoreState = await handle
        except asyncio.CancelledError:
            handle.cancel()
            # A sealed movement hands back what it held, so the close can record it; one of a
            # negotiation from before the seal ends cancelled.
            with contextlib.suppress(BaseException):
                self._take_back(await handle)
            await self._settle_sending()
            raise
        self._take_back(result)
        self._leave(movement)
        return result

    async def _settle_sending(self) -> None:
        """After a cancellation: a message whose forwarding failed goes back to the inbox."""
        if self._sending is None:
            return
        task, envelope = self._sending
        with contextlib.suppress(BaseException):
            await task
        if task.cancelled() or task.exception() is not None:
            self._held.discard(envelope.message_id)
            self._inbox.append(envelope)
        self._sending = None

    def _take_back(self, result: ScoreState) -> None:
        """What the movement did not use returns to the inbox; its last reports are folded in."""
        self._inbox[0:0] = result.inbox
        result.inbox = []
        self._held.clear()
        for report in result.reports:  # made after the movement last waited
            self._fold(report)
        result.reports = []
        self._last_sequence = max(self._last_sequence, result.last_sequence)
        self._refresh()

    async def _forward(
        self, movement: Movement, handle: workflow.ChildWorkflowHandle, target: Any
    ) -> None:
        """Forward the messages the movement takes until it ends (or the negotiation is cancelled)."""
        while True:
            await workflow.wait_condition(
                lambda: handle.done() or bool(self._deliverable(movement))
            )
            if handle.done():
                return
            batch = self._take(movement)
            for i, envelope in enumerate(batch):
                try:
                    await self._send(movement, target, envelope)
                except Exception:
                    # The movement closed as we sent: keep the rest for the next movement.
                    for left in batch[i:]:
                        self._held.discard(left.message_id)
                    self._inbox[0:0] = batch[i:]
                    self._refresh()
                    await workflow.wait_condition(handle.done)
                    return

    async def _send(self, movement: Movement, target: Any, envelope: Envelope) -> None:
        """Forward one message to the movement playing, sealed when this negotiation seals.

        A sealed message goes out from a task of its own: the SDK absorbs a cancellation that
        arrives while a signal is being sent (the signal completes, the CancelledError is gone),
        which would leave a cancelled negotiation forwarding for ever. Waiting on the task with
        ``wait_condition`` lets the cancellation through. (Unsealed negotiations, from before,
        keep sending as they did, so that their histories replay.)
        """
        if self._seal is None:
            await target.signal(DELIVER_SIGNAL, envelope)
            return
        self._seal.delivered += 1
        sealed = seal_message(
            self._seal,
            SEALED_DELIVER,
            self._seal.scope_for(movement.value, "down"),
            self._seal.delivered,
            envelope.model_dump_json(),
        )
        self._held.add(envelope.message_id)
        self._refresh()
        task = asyncio.create_task(target.signal(SEALED_DELIVER, sealed))
        self._sending = (task, envelope)
        await workflow.wait_condition(task.done)
        self._sending = None
        task.result()  # raises when the movement had closed: the caller keeps the message

    def _deliverable(self, movement: Movement) -> list[Envelope]:
        return [e for e in self._inbox if _kind(e) in _TAKES[movement]]

    def _take(self, movement: Movement) -> list[Envelope]:
        taken = self._deliverable(movement)
        self._inbox = [e for e in self._inbox if e not in taken]
        self._refresh()
        return taken

    def _enter(self, movement: Movement) -> None:
        self._status.movement = movement
        self._status.movements.append(MovementSpan(movement=movement, started_at=workflow.now()))
        self._upsert((sa.MOVEMENT, movement.value))
        self._refresh()

    def _leave(self, movement: Movement) -> None:
        span = self._status.movements[-1]
        if span.movement == movement and span.ended_at is None:
            span.ended_at = workflow.now()

    # --- decisions ------------------------------------------------------------------------------

    def _repeated(
        self, message: CounterpartyResponse | HumanDecision, payload: Any, kind: str
    ) -> bool:
        """True for a message id seen before; one that came with other content is recorded."""
        message_id = message.message_id
        known = self._seen.get(message_id)
        if known is None:
            self._seen[message_id] = _fingerprint(message)
            return False
        if known != _fingerprint(message):
            self._reject(payload, kind, _reused(message_id))
        return True

    def _why_not(self, decision: HumanDecision) -> str | None:
        if self._status.outcome is not None:
            return f"the negotiation is closed ({self._status.outcome.value})"
        return rejection_reason(
            decision,
            self._pending.get(decision.request_id),
            self._decided.get(decision.request_id),
            self._request.participants,
            self._request.mandate,
            workflow.now(),
        )

    def _record_decision(self, record: DecisionRecord) -> None:
        """Add a decision to the audit trail; the movement's record replaces the one taken at receipt."""
        decisions = self._status.decisions
        for i, known in enumerate(decisions):
            if (known.request_id, known.message_id) == (record.request_id, record.message_id):
                decisions[i] = record
                return
        decisions.append(record)

    def _accept(self, decision: HumanDecision) -> DecisionReceipt:
        now = workflow.now()
        request = self._pending.pop(decision.request_id)
        metrics.decision_waited(now - request.created_at, request.role.value, request.kind.value)
        card = self._request.participant(decision.approver)
        in_own_right = (
            card is not None
            and card.role == request.role
            and card.authority_limit >= request.required_authority
        )
        delegator = (
            None
            if in_own_right
            else acting_for(decision.approver, request, self._request.participants, now)
        )
        decider = delegator or card
        authority = decider.authority_limit if decider else Decimal(0)
        self._seen[decision.message_id] = _fingerprint(decision)
        self._status.last_received = ReceivedMessage(
            message_id=decision.message_id, kind="human_decision", at=now
        )
        self._decided[request.request_id] = record = DecisionRecord(
            request_id=request.request_id,
            kind=request.kind,
            role=request.role,
            approver=decision.approver,
            approver_authority=authority,
            verdict=decision.verdict,
            terms_version=request.terms_version,
            comment=decision.comment,
            at=now,
            message_id=decision.message_id,
            acting_for=delegator.name if delegator else None,
        )
        self._record_decision(record)  # the audit trail shows it with the receipt
        self._inbox.append(
            Envelope(
                decision=decision,
                received_at=now,
                acting_for=delegator.name if delegator else None,
                approver_authority=authority,
                role=request.role,
            )
        )
        receipt = DecisionReceipt(
            request_id=request.request_id,
            approver=decision.approver,
            verdict=decision.verdict,
            terms_version=request.terms_version,
            recorded_at=now,
        )
        self._receipts[decision.message_id] = receipt
        self._refresh()
        return receipt

    def _reject(self, payload: Any, kind: str, reason: str) -> None:
        self._record_rejection(
            RejectedMessage(
                message_id=message_id_of(payload), kind=kind, reason=reason, at=workflow.now()
            )
        )
        workflow.logger.info(
            "message rejected", extra={"kind": kind, "movement": self._status.movement.value}
        )

    def _record_rejection(self, rejected: RejectedMessage) -> None:
        """List a rejection; past the bound, the oldest give way and are counted (a flood of bad
        messages must not grow the status past what a query can answer)."""
        listed = self._status.rejected_messages
        listed.append(rejected)
        if len(listed) > MAX_REJECTED_LISTED:
            del listed[0]
            self._status.rejected_not_listed += 1

    # --- what operators see -------------------------------------------------------------------------

    def _upsert(self, *pairs: tuple[Any, Any]) -> None:
        """Upsert the search attributes that changed, in one command."""
        updates = []
        for key, value in pairs:
            if self._attributes.get(key.name, object()) == value:
                continue
            self._attributes[key.name] = value
            updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)

    @staticmethod
    def _tier_floor(policy: Policy, value: Any) -> float:
        """The lower bound of the deal's approval tier: its size band, not its value."""
        floor = 0.0
        for tier in policy.value_tiers:
            if tier.up_to is None or value <= tier.up_to:
                return floor
            floor = float(tier.up_to)
        return floor

    def _stop_counterparty_clock(self, now: datetime) -> None:
        if self._counterparty_since is not None:
            waited = (now - self._counterparty_since).total_seconds()
            self._status.counterparty_wait_seconds += waited
            self._counterparty_since = None

    def _tick_internal_clock(self) -> None:
        """People owe an answer while any decision request is open."""
        now = workflow.now()
        if self._pending and self._internal_since is None:
            self._internal_since = now
        elif not self._pending and self._internal_since is not None:
            waited = (now - self._internal_since).total_seconds()
            self._status.internal_wait_seconds += waited
            self._internal_since = None

    def _refresh(self) -> None:
        self._tick_internal_clock()
        status = self._status
        status.pending_decisions = [
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
            for r in self._pending.values()
        ]
        # Held here, or forwarded to the movement playing and not yet acted on there.
        status.queued_messages = len(self._inbox) + len(self._held)
        self._upsert((sa.AWAITING_DECISION, sorted({r.role.value for r in self._pending.values()})))
        awaiting = (
            ", ".join(f"{r.role.value} ({r.kind.value})" for r in self._pending.values())
            or "nobody"
        )
        last = status.timeline[-1].text if status.timeline else "started"
        workflow.set_current_details(
            f"**{status.counterparty}** · {status.deal_type.value} · "
            f"playbook **{status.playbook.value if status.playbook else 'choosing'}**\n\n"
            f"Movement **{status.movement.value}**, round {status.round}; "
            f"outcome **{status.outcome.value if status.outcome else 'open'}**\n\n"
            f"Awaiting: {awaiting}\n\nLast: {last}"
        )

    # --- rhythm and retrospective ------------------------------------------------------------

    async def _notify(self, key: str, kind: str, to: list[str], subject: str, body: str) -> bool:
        """Send a notification from the negotiation itself; a refusal is recorded, not raised."""
        failure = await send_once(self._request.negotiation_id, key, kind, to, subject, body)
        if failure is not None:
            self._note(f"{kind} notification could not be delivered ({failure})")
        return failure is None

    def _note(self, text: str) -> None:
        self._status.timeline.append(
            TimelineEvent(at=workflow.now(), movement=self._status.movement, text=text)
        )
        self._refresh()

    async def _rhythm(self) -> None:
        """Checkpoint digests to the participants while the negotiation is open."""
        await workflow.wait_condition(lambda: self._policy is not None)
        assert self._policy is not None
        every, working_days = checkpoint_cadence(self._request, self._policy)
        last = workflow.now()
        while True:
            at = next_checkpoint(last, every, working_days)
            await workflow.sleep(at - workflow.now(), summary=f"next checkpoint {at:%Y-%m-%d}")
            self._status.checkpoints.append(workflow.now())
            number = len(self._status.checkpoints)
            await self._notify(
                f"checkpoint/{number}",
                "checkpoint",
                [p.email for p in self._request.participants],
                f"Checkpoint {number}: {self._request.counterparty.name}",
                self._digest(last),
            )
            self._note(f"checkpoint {number} sent")
            last = at

    def _digest(self, since: datetime) -> str:
        status = self._status
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

    async def _retrospective(self, policy: Policy) -> None:
        """Ask every participant for a retrospective; missing answers are recorded as missing."""
        if policy.retrospective_days == 0:
            return
        until = workflow.now() + timedelta(days=policy.retrospective_days)
        self._status.retrospective_until = until
        participants = self._request.participants
        try:
            await self._ask_for_retrospectives(until)
        except asyncio.CancelledError:
            # The outcome stands: a cancellation now only closes the window early.
            self._note("retrospective closed early by a cancellation")
        self._status.retrospective = [
            self._retro_answers.get(p.name) or RetrospectiveEntry(participant=p.name, missing=True)
            for p in participants
        ]
        self._status.retrospective_until = None

    async def _ask_for_retrospectives(self, until: datetime) -> None:
        participants = self._request.participants
        await asyncio.gather(
            *(
                self._notify(
                    f"retrospective/{p.name}",
                    "retrospective",
                    [p.email],
                    f"Retrospective: {self._request.counterparty.name}",
                    f"The negotiation closed ({self._status.outcome}). How satisfied are you, 1-5?\n"
                    f"Answer by {until:%Y-%m-%d %H:%M} UTC: fitnest retro "
                    f"{self._request.negotiation_id} --participant {p.name} --satisfaction N\n",
                )
                for p in participants
            )
        )
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: len(self._retro_answers) == len(participants),
                timeout=until - workflow.now(),
                timeout_summary="retrospective window",
            )

    # --- the end ----------------------------------------------------------------------------------

    def _close(self, state: ScoreState) -> None:
        """The business end: outcome, leftover messages, operators' view."""
        now = workflow.now()
        status = self._status
        outcome = state.outcome or Outcome.EXPIRED
        status.outcome = outcome
        status.outcome_reason = state.outcome_reason
        status.closed_at = now
        if status.movements and status.movements[-1].ended_at is None:
            status.movements[-1].ended_at = now
        agreed = state.agreed if outcome == Outcome.AGREED else None
        status.agreed_terms = agreed
        for envelope in self._inbox:
            self._record_rejection(
                RejectedMessage(
                    message_id=envelope.message_id,
                    kind="counterparty_response" if envelope.counterparty else "human_decision",
                    reason=f"the negotiation closed ({outcome.value}) before it could be used",
                    at=now,
                )
            )
        self._inbox = []
        self._pending.clear()
        self._stop_counterparty_clock(now)
        self._upsert((sa.OUTCOME, outcome.value))
        self._refresh()
        metrics.negotiation_closed(
            outcome.value, _label(status.playbook), self._request.deal_type.value, state.round
        )

    async def _result(self, state: ScoreState) -> NegotiationResult:
        result = self._outcome_report(state, provisional=False)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _outcome_report(self, state: ScoreState, *, provisional: bool) -> NegotiationResult:
        """The result and its KPIs from the outcome and what the retrospective has so far."""
        status = self._status
        assert status.outcome is not None and status.closed_at is not None
        outcome = status.outcome
        agreed = status.agreed_terms
        policy = state.policy or Policy()
        quality = None
        compliance = Compliance(compliant=True)
        if agreed is not None:
            quality = deal_quality(
                agreed.terms, self._request.mandate, self._request.deal_type, policy
            )
            compliance = self._compliance(state, policy)
        entries = status.retrospective or list(self._retro_answers.values())
        answers = [e.satisfaction for e in entries if e.satisfaction is not None]
        kpis = compute_kpis(
            started_at=status.started_at,
            closed_at=status.closed_at,
            spans=status.movements,
            rounds=state.round,
            quality=quality,
            decisions=status.decisions,
            automated_responses=state.automated_responses,
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
            negotiation_id=self._request.negotiation_id,
            outcome=outcome,
            outcome_reason=state.outcome_reason,
            playbook=status.playbook,
            deal_type=self._request.deal_type,
            agreed_terms=agreed,
            kpis=kpis,
            status=status,
            provisional=provisional,
        )

    def _compliance(self, state: ScoreState, policy: Policy) -> Compliance:
        """Deviations approved before we committed; sign-offs and signature before signing."""
        agreed = state.agreed
        assert agreed is not None
        deviations = requirements_for(agreed.terms, self._request, policy, PlaybookName.AUTOMATED)
        before_commit = assess_compliance(
            deviations, self._status.decisions, agreed.version, state.committed_at
        )
        before_signing = assess_compliance(
            state.closure_requirements, self._status.decisions, agreed.version, state.signed_at
        )
        violations = before_commit.violations + before_signing.violations
        return Compliance(compliant=not violations, violations=violations)
