"""Opening: our standardised opening offer, and the counterparty's first response."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from negotiation.aggregate import counterparty_actions
    from negotiation.models import CounterpartyAction, Movement, Outcome
    from workflows.movement import Expired, MovementPlayer
    from workflows.protocol import MOVEMENT_TYPES, ScoreState


@workflow.defn(name=MOVEMENT_TYPES[Movement.OPENING])
class OpeningMovement(MovementPlayer):
    """Sends the opening offer and waits for the first response, up to the deadline."""

    movement = Movement.OPENING

    @workflow.init
    def __init__(self, state: ScoreState) -> None:
        super().__init__(state)

    @workflow.run
    async def run(self, state: ScoreState) -> ScoreState:
        try:
            return await self._open()
        except asyncio.CancelledError:
            return self.cancelled()

    async def _open(self) -> ScoreState:
        offer = await self.make_offer(
            self.state.request.opening_terms, "opening offer", "Our opening offer"
        )
        self.note("opening offer sent")
        try:
            response = await self.next_response(
                counterparty_actions(self.movement, agreed=False),
                "first response to the opening offer",
            )
        except Expired:
            self.state.close(
                Outcome.EXPIRED, "no response to the opening offer before the deadline"
            )
            return self.handed_back()
        if response.action == CounterpartyAction.ACCEPT:
            self.state.agreed = offer
            self.state.committed_at = workflow.now()
            # Agreed in principle; the outcome is set only once closure has signed it.
            self.state.outcome_reason = "the counterparty accepted the opening offer"
        elif response.action == CounterpartyAction.REJECT:
            self.state.close(Outcome.REJECTED, "the counterparty rejected the opening offer")
        elif response.action == CounterpartyAction.WITHDRAW:
            self.state.close(Outcome.WITHDRAWN, "the counterparty withdrew")
        else:
            self.state.first_response = response
        self.note(f"first response: {response.action.value}")
        return self.handed_back()
