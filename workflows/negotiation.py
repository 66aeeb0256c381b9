"""The negotiation: one durable workflow playing four movements as child workflows.

Clients know only the negotiation id; ``starters.client`` sends each message to the movement that
plays, by its derived id, and there it takes effect (``workflows.movement``). The negotiation
holds the :class:`~negotiation.aggregate.Negotiation` between movements, lends it to each movement
in turn and takes it back when the movement returns. A message that reaches the negotiation
itself (no movement was playing when its caller looked) is taken by the aggregate at once when
no movement plays, and forwarded, sealed, to the movement when one does: never lost, never
applied twice, in the order it came.

It continues-as-new between two development runs when its own history grows long, so no run
grows without bound. Negotiations started before this path (no ``ONE_HOP`` marker) are played by
``workflows.legacy``, to which every handler here hands over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from negotiation.aggregate import (
        COUNTERPARTY,
        DECISION,
        Negotiation,
        Refusal,
        ResponseReceipt,
    )
    from negotiation.decisions import explain
    from negotiation.models import (
        MAX_KIND,
        CounterpartyResponse,
        DecisionReceipt,
        HumanDecision,
        Movement,
        NegotiationRequest,
        NegotiationResult,
        NegotiationStatus,
        Outcome,
        PlaybookName,
        RejectedMessage,
        RetrospectiveAnswer,
        RetrospectiveEntry,
        shorten,
    )
    from negotiation.policy import Policy, tier_floor
    from workflows import metrics
    from workflows import search_attributes as sa
    from workflows.closure import ClosureMovement
    from workflows.development import DevelopmentMovement
    from workflows.intake import message_id_of, read_one
    from workflows.legacy.negotiation import LegacyNegotiation
    from workflows.movement import MovementPlayer
    from workflows.opening import OpeningMovement
    from workflows.outbound import send_once
    from workflows.preparation import PreparationMovement
    from workflows.protocol import (
        COUNTERPARTY_SIGNAL,
        DECISION_SIGNAL,
        INTERNAL_SIGNALS,
        MAX_FORWARDED,
        MAX_FORWARDED_BYTES,
        MOVEMENT_PLAYING,
        NOT_ON_THIS_PATH,
        ONE_HOP,
        Carried,
        Forwarded,
        ForwardedBatch,
        MovementNews,
        ScoreState,
        movement_id,
    )
    from workflows.seal import (
        SEALED_DELIVER,
        SEALED_REPORTS,
        SealContext,
        choose_key,
        open_sealed,
        seal_message,
    )

_SUMMARIES = {
    Movement.PREPARATION: "Preparation: policy, playbook, role cards",
    Movement.OPENING: "Opening: opening offer and first response",
    Movement.DEVELOPMENT: "Development: counteroffer rounds",
    Movement.CLOSURE: "Closure: sign-off, signatures, hand-off",
}


def _label(playbook: PlaybookName | None) -> str:
    """A playbook as a metric label: ``none`` before preparation chose one."""
    return playbook.value if playbook is not None else "none"


@workflow.defn(failure_exception_types=[ValidationError])
class NegotiationWorkflow:
    """A negotiation from preparation to closure, with its messages, status and KPIs."""

    @workflow.init
    def __init__(self, request: NegotiationRequest, carried: Carried | None = None) -> None:
        # The SDK applies type hints only when the payload count matches them: a start has one
        # payload, a continue-as-new two, so the first arrives as JSON data. Validated here.
        request = NegotiationRequest.model_validate(request)
        # Decided in the first task: a run recorded before the one-hop path replays on release 4.
        self._legacy = None if workflow.patched(ONE_HOP) else LegacyNegotiation(request)
        self._request = request
        self._state = (
            carried.state
            if carried is not None
            else ScoreState(request=request, negotiation=Negotiation.open(request, workflow.now()))
        )
        self._attributes: dict[str, Any] = dict(carried.attributes) if carried else {}
        # The movement playing holds the aggregate; messages that reach us meanwhile go to it.
        self._playing: Movement | None = None
        self._outgoing: list[Forwarded] = []
        self._retro_answers: dict[str, RetrospectiveEntry] = {}
        self._retro_receipts: dict[str, RetrospectiveEntry] = {}
        self._closed = False

    @property
    def _negotiation(self) -> Negotiation:
        return self._state.negotiation

    @workflow.run
    async def run(
        self, request: NegotiationRequest, carried: Carried | None = None
    ) -> NegotiationResult:
        if self._legacy is not None:
            return await self._legacy.run(self._request)
        request = self._request
        self._seal_channel()
        state = self._state
        try:
            if carried is None:
                state = await self._play(
                    PreparationMovement,
                    (sa.COUNTERPARTY, request.counterparty.name),
                    (sa.DEAL_TYPE, request.deal_type.value),
                )
                bound = request.mandate.total_contract_value
                metrics.negotiation_started(_label(state.playbook), request.deal_type.value)
                state = await self._play(
                    OpeningMovement,
                    (
                        sa.DEAL_VALUE,
                        tier_floor(state.policy or Policy(), max(bound.target, bound.walk_away)),
                    ),
                    (sa.PLAYBOOK, state.playbook.value if state.playbook else None),
                )
            while state.outcome is None and state.agreed is None:
                state = await self._play(DevelopmentMovement)
                if state.to_be_continued and self._history_is_long():
                    await self._continue_as_new()
            if state.outcome is None and state.agreed is not None:
                state = await self._play(ClosureMovement)
        except asyncio.CancelledError:
            self._state.close(Outcome.CANCELLED, "cancelled by an operator")
        self._close()
        await self._retrospective(self._state.policy or Policy())
        result = self._result(provisional=False)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _seal_channel(self) -> None:
        key_id = choose_key(workflow.info().start_time)
        if key_id is None:  # fails this task until the worker is given its seal keyring
            raise RuntimeError("this worker holds no seal keys (FITNEST_SEAL_KEY_FILE)")
        self._state.seal = SealContext(
            key_id=key_id,
            scope=f"{self._request.negotiation_id}:{workflow.info().run_id}",
        )

    # --- messages that reach the negotiation itself -------------------------------------------

    @workflow.signal(dynamic=True)
    def receive(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal, whatever it holds: taken, forwarded to the movement playing, or recorded
        as rejected with a bounded reason. Never raised."""
        if self._legacy is not None:
            self._legacy.receive(name, args)
            return
        kind = shorten(name, MAX_KIND)
        payload, unreadable = read_one(args)
        if unreadable is not None:
            self._refuse(None, kind, unreadable)
        elif name in (COUNTERPARTY_SIGNAL, DECISION_SIGNAL):
            self._arrived(name, payload)
        elif name == SEALED_REPORTS:
            self._on_news(payload)
        elif name in INTERNAL_SIGNALS:
            self._refuse(
                message_id_of(payload),
                kind,
                f"internal signal {kind!r} refused: the negotiation and its movements take only "
                "what they seal for each other",
            )
        else:
            self._refuse(message_id_of(payload), kind, f"unknown signal {kind!r}: nothing takes it")

    def _arrived(self, name: str, payload: Any) -> None:
        now = workflow.now()
        try:
            if name == COUNTERPARTY_SIGNAL:
                message = Forwarded(
                    counterparty=CounterpartyResponse.model_validate(payload), received_at=now
                )
            else:
                message = Forwarded(decision=HumanDecision.model_validate(payload), received_at=now)
        except ValidationError as err:
            self._refuse(message_id_of(payload), name, f"malformed: {explain(err)}")
            return
        if self._playing is not None:
            self._outgoing.append(message)  # the movement playing holds the rules: it decides
        else:
            self._apply(message)

    def _apply(self, message: Forwarded) -> None:
        """A message taken while the negotiation holds the aggregate itself."""
        negotiation = self._negotiation
        if message.rejected is not None:
            negotiation.record_rejection(message.rejected)
        elif message.counterparty is not None:
            negotiation.take_counterparty_response(
                message.counterparty, self._state.counterparty_takes(), message.received_at
            )
        elif message.decision is not None:
            negotiation.take_decision(message.decision, self._request, message.received_at)

    def _refuse(self, message_id: str | None, kind: str, reason: str) -> None:
        rejected = RejectedMessage(
            message_id=message_id, kind=kind, reason=reason, at=workflow.now()
        )
        if self._playing is not None:  # the status the movement holds records it, in order
            self._outgoing.append(Forwarded(rejected=rejected, received_at=rejected.at))
        else:
            self._negotiation.record_rejection(rejected)
        workflow.logger.info(
            "message rejected",
            extra={"kind": kind, "movement": self._negotiation.status.movement.value},
        )

    def _moved_on(self, action: str) -> ApplicationError:
        assert self._playing is not None
        child = movement_id(self._request.negotiation_id, self._playing)
        return ApplicationError(
            f"the {self._playing.value} movement plays now and takes {action}: send it to {child}",
            type=MOVEMENT_PLAYING,
            non_retryable=True,
        )

    @workflow.update(name="respond")
    def respond(self, response: CounterpartyResponse) -> ResponseReceipt:
        """A counterparty response, answered at once (between movements: kept for the next)."""
        taken = self._negotiation.take_counterparty_response(
            response, self._state.counterparty_takes(), workflow.now()
        )
        if isinstance(taken, Refusal):
            raise ApplicationError(taken.reason, type=taken.code.value, non_retryable=True)
        return taken

    @respond.validator
    def _validate_respond(self, response: CounterpartyResponse) -> None:
        if self._legacy is not None:
            raise ApplicationError(
                "this negotiation started before responses could be answered at once: "
                "send the response as a signal",
                type=NOT_ON_THIS_PATH,
                non_retryable=True,
            )
        if self._playing is not None:
            raise self._moved_on("counterparty responses")
        refusal = self._negotiation.counterparty_refusal(response, self._state.counterparty_takes())
        if refusal is not None:
            raise ApplicationError(refusal.reason, type=refusal.code.value, non_retryable=True)

    @workflow.update
    def decide(self, decision: HumanDecision) -> DecisionReceipt:
        """A person's decision, answered with a receipt once it is accepted."""
        if self._legacy is not None:
            return self._legacy.decide(decision)
        taken = self._negotiation.take_decision(decision, self._request, workflow.now())
        if isinstance(taken, str):
            raise ApplicationError(taken, type="DecisionRejected", non_retryable=True)
        return taken

    @decide.validator
    def _validate_decide(self, decision: HumanDecision) -> None:
        if self._legacy is not None:
            self._legacy._validate_decide(decision)
            return
        if self._playing is not None:
            raise self._moved_on("decisions")
        reason = self._negotiation.decision_refusal(decision, self._request, workflow.now())
        if reason is not None:
            raise ValueError(reason)

    @workflow.update
    def retrospective(self, answer: RetrospectiveAnswer) -> RetrospectiveEntry:
        """A participant's retrospective, taken while the window is open."""
        if self._legacy is not None:
            return self._legacy.retrospective(answer)
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

    @retrospective.validator
    def _validate_retrospective(self, answer: RetrospectiveAnswer) -> None:
        if self._legacy is not None:
            self._legacy._validate_retrospective(answer)
            return
        if answer.message_id in self._retro_receipts:
            return
        until = self._negotiation.status.retrospective_until
        if until is None or workflow.now() >= until:
            raise ValueError("the retrospective is not open")
        if self._request.participant(answer.participant) is None:
            raise ValueError(f"{answer.participant} is not a participant in this negotiation")
        if answer.participant in self._retro_answers:
            raise ValueError(f"{answer.participant} has already answered the retrospective")

    @workflow.query
    def status(self) -> NegotiationStatus:
        """The negotiation as this workflow has it. While a movement plays, ``playing`` names
        it: its own ``status`` is the live one (``starters.client.get_status`` reads it there)."""
        if self._legacy is not None:
            return self._legacy.status()
        return self._negotiation.status

    @workflow.query
    def result_so_far(self) -> NegotiationResult | None:
        """The result while the retrospective window is open (``provisional``: satisfaction may
        still change); None before the outcome. Reports need not wait out the window."""
        if self._legacy is not None:
            return self._legacy.result_so_far()
        return self._result(provisional=True) if self._closed else None

    # --- what the movement playing tells us ----------------------------------------------------

    def _on_news(self, payload: Any) -> None:
        """The pending decisions of the movement playing, taken only when its seal holds."""
        seal = self._state.seal
        if seal is None or self._playing is None:
            self._refuse(message_id_of(payload), SEALED_REPORTS, "no movement plays to report")
            return
        scope = seal.scope_for(self._playing.value, "up")
        opened = open_sealed(seal, SEALED_REPORTS, scope, payload, seal.reported, MovementNews)
        if isinstance(opened, str):
            self._refuse(message_id_of(payload), SEALED_REPORTS, opened)
            return
        news, seal.reported = opened
        status = self._negotiation.status
        status.pending_decisions = news.pending
        status.round = news.round
        self._upsert((sa.AWAITING_DECISION, sorted({p.role.value for p in news.pending})))
        workflow.set_current_details(news.details)

    # --- the movements --------------------------------------------------------------------------

    async def _play(
        self, movement_wf: type[MovementPlayer], *attributes: tuple[Any, Any]
    ) -> ScoreState:
        """Lend the aggregate to one movement, a child workflow, until it hands it back; forward
        to it, in order, what reaches us meanwhile. ``attributes`` are upserted with the
        movement's own, in one command."""
        movement = movement_wf.movement
        state = self._state
        negotiation = state.negotiation
        if negotiation.status.movement != movement or not negotiation.status.movements:
            negotiation.enter(movement, workflow.now())
        self._upsert(
            *attributes,
            (sa.MOVEMENT, movement.value),
            (sa.AWAITING_DECISION, negotiation.pending_roles()),
        )
        state.to_be_continued = False
        seal = state.seal
        assert seal is not None
        seal.delivered = seal.reported = 0  # each movement's channel counts from zero
        child_id = movement_id(self._request.negotiation_id, movement)
        negotiation.status.playing = child_id
        workflow.set_current_details(
            f"{negotiation.details()}\n\nPlaying: [{child_id}] (its status is the live one)"
        )
        # Lent from the moment the start is commanded: a message that reaches us before the
        # movement has started is forwarded to it, never applied to the copy it no longer owns.
        self._playing = movement
        handle = await workflow.start_child_workflow(
            movement_wf.run,  # type: ignore[attr-defined]
            state,
            id=child_id,
            static_summary=_SUMMARIES[movement],
        )
        try:
            await self._forward(movement, handle)
            result: ScoreState = await handle
        except asyncio.CancelledError:
            handle.cancel()
            with contextlib.suppress(BaseException):  # it hands back what it held
                self._take_back(await handle)
            self._playing = None
            raise
        self._take_back(result)
        return self._state

    async def _forward(self, movement: Movement, handle: workflow.ChildWorkflowHandle) -> None:
        """Forward, sealed and in order, what reached us while the movement plays."""
        target = workflow.get_external_workflow_handle(
            movement_id(self._request.negotiation_id, movement)
        )
        seal = self._state.seal
        assert seal is not None
        while True:
            await workflow.wait_condition(lambda: handle.done() or bool(self._outgoing))
            if handle.done():
                return
            batch = self._next_batch()
            seal.delivered += 1
            sealed = seal_message(
                seal,
                SEALED_DELIVER,
                seal.scope_for(movement.value, "down"),
                seal.delivered,
                batch.model_dump_json(),
            )
            # From a task of its own: the SDK absorbs a cancellation that arrives while a signal
            # is sent, and waiting on the task with wait_condition lets it through.
            task = asyncio.create_task(target.signal(SEALED_DELIVER, sealed))
            await workflow.wait_condition(task.done)
            if task.exception() is not None:  # the movement closed: it comes back with the rest
                await workflow.wait_condition(handle.done)
                return
            del self._outgoing[: len(batch.messages)]

    def _next_batch(self) -> ForwardedBatch:
        """The oldest messages waiting, as many as one signal carries."""
        batch: list[Forwarded] = []
        size = 0
        for message in self._outgoing[:MAX_FORWARDED]:
            size += len(message.model_dump_json())
            if batch and size > MAX_FORWARDED_BYTES:
                break
            batch.append(message)
        return ForwardedBatch(messages=batch)

    def _take_back(self, result: ScoreState) -> None:
        """The movement hands the aggregate back; what reached us meanwhile and was not
        forwarded is taken now, in the order it came."""
        movement = self._playing
        self._playing = None
        self._state = result
        negotiation = result.negotiation
        negotiation.status.playing = None
        for message in self._outgoing:
            self._apply(message)
        self._outgoing = []
        if movement is not None and not result.to_be_continued:
            negotiation.leave(movement, workflow.now())
        # The search attributes follow with the next movement's start, or the close, in one
        # command.
        workflow.set_current_details(negotiation.details())

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._state.history_budget
        )

    async def _continue_as_new(self) -> None:
        """Go on in a fresh run with the whole state (between two development runs, when no
        movement plays and every handler has finished)."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            args=[self._request, Carried(state=self._state, attributes=self._attributes)]
        )

    # --- what operators see -------------------------------------------------------------------

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

    # --- the end ----------------------------------------------------------------------------------

    def _close(self) -> None:
        """The business end: outcome, leftover messages, operators' view."""
        state = self._state
        outcome = state.outcome or Outcome.EXPIRED
        state.negotiation.close(outcome, state.outcome_reason, state.agreed, workflow.now())
        self._closed = True
        self._upsert((sa.OUTCOME, outcome.value), (sa.AWAITING_DECISION, []))
        workflow.set_current_details(state.negotiation.details())
        metrics.negotiation_closed(
            outcome.value,
            _label(state.negotiation.status.playbook),
            self._request.deal_type.value,
            state.round,
        )

    def _result(self, *, provisional: bool) -> NegotiationResult:
        return self._negotiation.result(
            self._request,
            self._state.closing(),
            list(self._retro_answers.values()),
            provisional=provisional,
        )

    async def _retrospective(self, policy: Policy) -> None:
        """Ask every participant for a retrospective; missing answers are recorded as missing."""
        if policy.retrospective_days == 0:
            return
        status = self._negotiation.status
        until = workflow.now() + timedelta(days=policy.retrospective_days)
        status.retrospective_until = until
        participants = self._request.participants
        try:
            await self._ask_for_retrospectives(until)
        except asyncio.CancelledError:
            # The outcome stands: a cancellation now only closes the window early.
            self._negotiation.note("retrospective closed early by a cancellation", workflow.now())
        status.retrospective = [
            self._retro_answers.get(p.name) or RetrospectiveEntry(participant=p.name, missing=True)
            for p in participants
        ]
        status.retrospective_until = None

    async def _ask_for_retrospectives(self, until: Any) -> None:
        participants = self._request.participants
        outcome = self._negotiation.status.outcome

        async def ask(name: str, email: str) -> None:
            failure = await send_once(
                self._request.negotiation_id,
                f"retrospective/{name}",
                "retrospective",
                [email],
                f"Retrospective: {self._request.counterparty.name}",
                f"The negotiation closed ({outcome}). How satisfied are you, 1-5?\n"
                f"Answer by {until:%Y-%m-%d %H:%M} UTC: fitnest retro "
                f"{self._request.negotiation_id} --participant {name} --satisfaction N\n",
            )
            if failure is not None:
                self._negotiation.note(
                    f"retrospective notification could not be delivered ({failure})", workflow.now()
                )

        await asyncio.gather(*(ask(p.name, p.email) for p in participants))
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: len(self._retro_answers) == len(participants),
                timeout=until - workflow.now(),
                timeout_summary="retrospective window",
            )


__all__ = ["COUNTERPARTY", "DECISION", "NegotiationWorkflow"]
