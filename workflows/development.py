"""Development: the counteroffer rounds, played by the chosen playbook.

Inside the mandate the team improvises (or the strategy does, in the automated playbook);
outside it the decision escalates to whoever holds the authority. When its history grows long the
movement hands its whole state back between two rounds, and the negotiation starts it anew (or
continues-as-new first), so a negotiation of any number of rounds keeps every run small.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from negotiation.models import (
        CounterpartyAction,
        CounterpartyResponse,
        DecisionKind,
        Movement,
        Outcome,
        PlaybookName,
        Review,
        Role,
        Touchpoint,
    )
    from negotiation.policy import (
        Policy,
        Requirement,
        merge_requirements,
        requirements_for,
        resolve_authority,
    )
    from negotiation.reviews import FinanceFindings, LegalFindings
    from negotiation.strategy import MoveKind, respond
    from negotiation.terms import Offer, Party, Terms
    from workflows.movement import AskOutcome, Expired, MovementPlayer
    from workflows.protocol import MOVEMENT_TYPES, ScoreState

_ANSWERS = frozenset(
    {
        CounterpartyAction.ACCEPT,
        CounterpartyAction.COUNTER,
        CounterpartyAction.REJECT,
        CounterpartyAction.WITHDRAW,
    }
)


def review_needs(legal: LegalFindings, finance: FinanceFindings) -> list[Requirement]:
    """Sign-offs that the reviews ask for."""
    needs = []
    if legal.counsel_must_sign:
        needs.append(
            Requirement(role=Role.LEGAL, min_authority=0, reason="legal review: counsel must sign")
        )
    if not finance.approved and finance.required_role is not None:
        needs.append(
            Requirement(
                role=finance.required_role,
                min_authority=finance.required_authority,
                reason="finance review: outside the approval matrix",
            )
        )
    return needs


@workflow.defn(name=MOVEMENT_TYPES[Movement.DEVELOPMENT])
class DevelopmentMovement(MovementPlayer):
    """Counteroffer rounds until agreement, walk-away, rejection, withdrawal or expiry."""

    movement = Movement.DEVELOPMENT

    @workflow.init
    def __init__(self, state: ScoreState) -> None:
        super().__init__(state)

    @workflow.run
    async def run(self, state: ScoreState) -> ScoreState:
        try:
            while self.state.outcome is None and self.state.agreed is None:
                response = self.state.first_response
                self.state.first_response = None
                if response is None:
                    if self._history_is_long():
                        return await self._to_be_continued()
                    our = self.state.our_offer
                    response = await self.next_response(
                        _ANSWERS, f"answer to our version {our.version if our else '-'}"
                    )
                await self._answer(response)
        except Expired:
            self.state.close(Outcome.EXPIRED, "the deadline passed during the counteroffer rounds")
        except asyncio.CancelledError:
            return self.cancelled()
        return self.handed_back()

    # --- the round ----------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        assert self.state.policy is not None, "preparation sets the policy"
        return self.state.policy

    async def _answer(self, response: CounterpartyResponse) -> None:
        if response.action == CounterpartyAction.ACCEPT:
            assert self.state.our_offer is not None
            await self._commit(
                self.state.our_offer,
                f"the counterparty accepted our version {self.state.our_offer.version}",
            )
        elif response.action == CounterpartyAction.REJECT:
            self.state.close(Outcome.REJECTED, "the counterparty rejected our offer")
            self.note("the counterparty rejected our offer")
        elif response.action == CounterpartyAction.WITHDRAW:
            self.state.close(Outcome.WITHDRAWN, "the counterparty withdrew")
            self.note("the counterparty withdrew")
        else:
            assert response.terms is not None  # the model requires terms with 'counter'
            self.state.round += 1
            previous = self.state.their_offer
            their = self.new_offer(Party.THEM, response.terms, response.note)
            self.note(f"round {self.state.round}: counteroffer version {their.version} received")
            await self._keep_in_touch(previous, their)
            if self.state.round > self.state.request.mandate.max_rounds:
                await self._walk_away("the maximum number of rounds passed without agreement")
                return
            play = {
                PlaybookName.AUTOMATED: self._automated,
                PlaybookName.CONDUCTOR_LED: self._conductor_led,
                PlaybookName.COLLABORATIVE_ENSEMBLE: self._ensemble,
            }[self.state.playbook or PlaybookName.CONDUCTOR_LED]
            await play(their)

    async def _automated(self, their: Offer) -> None:
        """The strategy answers inside the mandate; people are asked only beyond it."""
        req = self.state.request
        assert self.state.our_offer is not None
        move = respond(
            req.mandate,
            self.state.our_offer.terms,
            their.terms,
            self.state.round,
            self.policy.concession,
            self.state.strategy,
        )
        if move.kind == MoveKind.ACCEPT:
            self.state.automated_responses += 1
            await self._commit(their, f"strategy accepted: {move.reason}")
        elif move.kind == MoveKind.COUNTER:
            assert move.terms is not None
            self.state.automated_responses += 1
            self.state.strategy = move.state
            await self._counter(move.terms, f"strategy countered: {move.reason}")
        else:
            needs = self._routed(their.terms, PlaybookName.AUTOMATED)
            self.note(f"escalated: {move.reason}")
            outcome = await self.ask(
                [(n, DecisionKind.ESCALATION) for n in needs], their, together=True
            )
            await self._conclude(outcome, their)

    async def _conductor_led(self, their: Offer) -> None:
        """The deal owner decides every counteroffer; reviews and escalations run one after another."""
        legal = await self._legal(their)
        finance = await self._finance(their)
        owner = Requirement(
            role=Role.DEAL_OWNER,
            min_authority=0,
            reason="the deal owner decides every counteroffer",
        )
        outcome = await self.ask(
            [(owner, DecisionKind.COUNTEROFFER)],
            their,
            together=False,
            suggestion=self._suggestion(their),
        )
        if not outcome.approved:
            await self._conclude(outcome, their)
            return
        owner_authority = outcome.decisions[-1].approver_authority
        further = [
            n
            for n in merge_requirements(
                self._routed(their.terms, PlaybookName.CONDUCTOR_LED) + review_needs(legal, finance)
            )
            if not (n.role == Role.DEAL_OWNER and n.min_authority <= owner_authority)
        ]
        further = merge_requirements(
            [resolve_authority(n, self.state.request.participants) for n in further]
        )
        escalation = await self.ask(
            [(n, DecisionKind.ESCALATION) for n in further], their, together=False
        )
        await self._conclude(escalation, their)

    async def _ensemble(self, their: Offer) -> None:
        """Legal and finance review in parallel; every required role must concur."""
        legal, finance = await asyncio.gather(self._legal(their), self._finance(their))
        owner = Requirement(role=Role.DEAL_OWNER, min_authority=0, reason="the deal owner concurs")
        needs = merge_requirements(
            [
                owner,
                *self._routed(their.terms, PlaybookName.COLLABORATIVE_ENSEMBLE),
                *review_needs(legal, finance),
            ]
        )
        needs = merge_requirements(
            [resolve_authority(n, self.state.request.participants) for n in needs]
        )
        outcome = await self.ask(
            [(n, DecisionKind.COUNTEROFFER) for n in needs],
            their,
            together=True,
            suggestion=self._suggestion(their),
        )
        await self._conclude(outcome, their)

    # --- steps ---------------------------------------------------------------------------------

    def _routed(self, terms: Terms, playbook: PlaybookName) -> list[Requirement]:
        return requirements_for(terms, self.state.request, self.policy, playbook)

    def _suggestion(self, their: Offer) -> Terms | None:
        assert self.state.our_offer is not None
        move = respond(
            self.state.request.mandate,
            self.state.our_offer.terms,
            their.terms,
            self.state.round,
            self.policy.concession,
            self.state.strategy,
        )
        return move.terms if move.kind == MoveKind.COUNTER else None

    async def _legal(self, offer: Offer) -> LegalFindings:
        found = await self.review_legal(offer, f"legal review of version {offer.version}")
        self.negotiation.review(
            Review(
                kind="legal",
                terms_version=offer.version,
                passed=not found.counsel_must_sign,
                required_role=Role.LEGAL if found.counsel_must_sign else None,
                risk_score=found.risk_score,
                findings=found.findings,
                at=workflow.now(),
            )
        )
        return found

    async def _finance(self, offer: Offer) -> FinanceFindings:
        found = await self.review_finance(offer, f"finance approval of version {offer.version}")
        self.negotiation.review(
            Review(
                kind="finance",
                terms_version=offer.version,
                passed=found.approved,
                required_role=found.required_role,
                required_authority=found.required_authority,
                findings=found.findings,
                at=workflow.now(),
            )
        )
        return found

    async def _conclude(self, outcome: AskOutcome, their: Offer) -> None:
        """Act on people's answer to the counterparty's offer."""
        if outcome.approved:
            await self._commit(their, "approved by the people who hold the authority")
        elif outcome.revised_terms is not None:
            who = outcome.deciding.approver if outcome.deciding else "a participant"
            await self._counter(outcome.revised_terms, f"{who} revised our counteroffer")
        else:
            who = outcome.deciding.approver if outcome.deciding else "a participant"
            await self._walk_away(f"{who} rejected the counterparty's terms")

    async def _commit(self, offer: Offer, reason: str) -> None:
        self.state.agreed = offer
        self.state.committed_at = workflow.now()
        self.state.outcome_reason = reason
        self.note(f"agreed on version {offer.version}: {reason}")
        if offer.party == Party.THEM:
            await self.send_to_counterparty(offer, "We accept your terms")

    async def _counter(self, terms: Terms, reason: str) -> None:
        offer = await self.make_offer(terms, reason, "Our counteroffer")
        self.note(f"counteroffer version {offer.version} sent: {reason}")

    async def _walk_away(self, reason: str) -> None:
        req = self.state.request
        await self.notify(
            "walk-away",
            "outcome",
            [req.counterparty.email],
            "We end the negotiation",
            f"We end negotiation {req.negotiation_id}: {reason}.\n",
        )
        self.state.close(Outcome.WALKED_AWAY, reason)
        self.note(f"walked away: {reason}")

    async def _keep_in_touch(self, previous: Offer | None, their: Offer) -> None:
        """After rounds without a concession from them, propose a check-in (a recorded touchpoint)."""
        stalled = previous is not None and previous.terms == their.terms
        self.state.stalled_rounds = self.state.stalled_rounds + 1 if stalled else 0
        if self.state.stalled_rounds < self.policy.touchpoint_after_stalled_rounds:
            return
        self.state.stalled_rounds = 0
        req = self.state.request
        owners = [p.email for p in req.holders(Role.DEAL_OWNER)]
        reason = f"{self.policy.touchpoint_after_stalled_rounds} rounds without a concession"
        await self.notify(
            f"touchpoint/r{self.state.round}",
            "touchpoint",
            [req.counterparty.email, *owners],
            "Shall we talk?",
            f"Negotiation {req.negotiation_id}: {reason}. We propose a call to understand "
            "what matters most to you.\n",
        )
        self.negotiation.touch(
            Touchpoint(at=workflow.now(), round=self.state.round, reason=reason),
            f"check-in proposed to the counterparty: {reason}",
            workflow.now(),
        )

    # --- long negotiations -------------------------------------------------------------------

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self.state.history_budget
        )

    async def _to_be_continued(self) -> ScoreState:
        """Hand the whole state back between two rounds, to go on in a fresh run (the
        negotiation may continue-as-new first). Messages taken meanwhile go with it."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.state.to_be_continued = True
        return self.handed_back()
