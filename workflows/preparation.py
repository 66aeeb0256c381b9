"""Preparation: the policy, the playbook, and every participant's role card."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notifications import Notification
    from activities.policy_source import PolicySource
    from activities.timeouts import POLICY
    from negotiation.models import Movement, RoleCard
    from negotiation.policy import select_playbook
    from workflows.movement import MovementPlayer
    from workflows.outbound import send_all
    from workflows.protocol import MOVEMENT_TYPES, ScoreState


@workflow.defn(name=MOVEMENT_TYPES[Movement.PREPARATION])
class PreparationMovement(MovementPlayer):
    """Loads the policy, chooses the playbook and hands each participant their role card."""

    movement = Movement.PREPARATION

    @workflow.init
    def __init__(self, state: ScoreState) -> None:
        super().__init__(state)

    @workflow.run
    async def run(self, state: ScoreState) -> ScoreState:
        try:
            return await self._prepare()
        except asyncio.CancelledError:
            return self.cancelled()

    async def _prepare(self) -> ScoreState:
        policy = await workflow.execute_activity_method(
            PolicySource.load_policy, summary="load the negotiation policy", **POLICY
        )
        self.state.policy = policy
        self.state.playbook = select_playbook(self.state.request, policy)
        self.negotiation.choose(self.state.playbook)
        chosen = (
            "requested" if self.state.request.playbook else f"chosen by policy {policy.version}"
        )
        self.note(f"playbook {self.state.playbook.value} ({chosen})")
        await self._hand_role_cards()
        self.note(f"role cards sent to {len(self.state.request.participants)} participants")
        return self.handed_back()

    async def _hand_role_cards(self) -> None:
        """Every participant's role card, in one activity (each card sent once, by its key)."""
        req = self.state.request
        cards = [
            Notification(
                idempotency_key=f"{req.negotiation_id}/role-card/{card.name}",
                negotiation_id=req.negotiation_id,
                kind="role_card",
                to=(card.email,),
                subject="Your role card",
                body=self._role_card(card),
            )
            for card in req.participants
        ]
        refused = await send_all(req.negotiation_id, cards)
        for failure in sorted(set(refused.values())):
            self.note(f"role_card notification could not be delivered ({failure})")

    def _role_card(self, card: RoleCard) -> str:
        req = self.state.request
        duties = "\n".join(f"  - {d}" for d in card.duties) or "  - none listed"
        return (
            f"You take part in negotiation {req.negotiation_id} with {req.counterparty.name} "
            f"({req.deal_type.value}) as {card.role.value}.\n"
            f"Playbook: {self.state.playbook.value if self.state.playbook else 'n/a'}\n"
            f"Your contribution: {card.contribution or 'n/a'}\n"
            f"Your decision authority: up to {card.authority_limit} {req.currency}\n"
            f"Your communication duties:\n{duties}\n"
        )
