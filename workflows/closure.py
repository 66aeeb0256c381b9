"""Closure: final legal and finance sign-off, both signatures, hand-off to implementation."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from negotiation.mandate import evaluate
    from negotiation.models import (
        CounterpartyAction,
        DecisionKind,
        DecisionRecord,
        Movement,
        Outcome,
        PlaybookName,
        Review,
        Role,
        Verdict,
    )
    from negotiation.policy import Requirement, resolve_authority
    from negotiation.reviews import FinanceFindings, LegalFindings
    from workflows.movement import Expired, MovementPlayer
    from workflows.outbound import describe
    from workflows.protocol import MOVEMENT_TYPES, ScoreState

_SIGNING = frozenset(
    {CounterpartyAction.SIGN, CounterpartyAction.WITHDRAW, CounterpartyAction.REJECT}
)
_YES_NO = (Verdict.APPROVE, Verdict.REJECT)


@workflow.defn(name=MOVEMENT_TYPES[Movement.CLOSURE])
class ClosureMovement(MovementPlayer):
    """Signs off and signs the agreed terms, then hands the deal to implementation."""

    movement = Movement.CLOSURE
    rhythm = False  # the checkpoints stop at closure

    @workflow.init
    def __init__(self, state: ScoreState) -> None:
        super().__init__(state)

    @workflow.run
    async def run(self, state: ScoreState) -> ScoreState:
        try:
            if await self._sign_off() and await self._sign():
                await self._hand_off()
        except Expired:
            self.state.close(Outcome.EXPIRED, "the deadline passed before the agreement was signed")
        except asyncio.CancelledError:
            return self.cancelled()
        return self.handed_back()

    @property
    def _together(self) -> bool:
        return self.state.playbook != PlaybookName.CONDUCTOR_LED

    async def _sign_off(self) -> bool:
        """Final legal review and finance approval; people sign off where the reviews ask for it."""
        agreed = self.state.agreed
        assert agreed is not None and self.state.policy is not None
        # Each review's coroutine is created only when it is awaited: one created early and never
        # reached (a workflow evicted from the cache during the legal review) warns "never awaited".
        if self._together:
            legal, finance = await asyncio.gather(
                self.review_legal(agreed, "final legal review"),
                self.review_finance(agreed, "final finance approval"),
            )
        else:
            legal = await self.review_legal(agreed, "final legal review")
            finance = await self.review_finance(agreed, "final finance approval")
        self._report_reviews(agreed.version, legal, finance)
        needs: list[tuple[Requirement, DecisionKind]] = []
        if legal.counsel_must_sign:
            needs.append(
                (
                    Requirement(
                        role=Role.LEGAL,
                        min_authority=0,
                        reason="final legal review: counsel must sign",
                    ),
                    DecisionKind.LEGAL_SIGNOFF,
                )
            )
        if not finance.approved and finance.required_role is not None:
            need = Requirement(
                role=finance.required_role,
                min_authority=finance.required_authority,
                reason="final finance approval: outside the approval matrix",
            )
            needs.append(
                (
                    resolve_authority(need, self.state.request.participants),
                    DecisionKind.FINANCE_SIGNOFF,
                )
            )
        self.state.closure_requirements = [n for n, _ in needs]
        outcome = await self.ask(needs, agreed, together=self._together, verdicts=_YES_NO)
        if not outcome.approved:
            who = outcome.deciding.approver if outcome.deciding else "a participant"
            await self._end(Outcome.WALKED_AWAY, f"{who} refused the final sign-off")
            return False
        return True

    def _report_reviews(self, version: int, legal: LegalFindings, finance: FinanceFindings) -> None:
        now = workflow.now()
        for review in (
            Review(
                kind="legal",
                terms_version=version,
                passed=not legal.counsel_must_sign,
                required_role=Role.LEGAL if legal.counsel_must_sign else None,
                risk_score=legal.risk_score,
                findings=legal.findings,
                at=now,
            ),
            Review(
                kind="finance",
                terms_version=version,
                passed=finance.approved,
                required_role=finance.required_role,
                required_authority=finance.required_authority,
                findings=finance.findings,
                at=now,
            ),
        ):
            self.negotiation.review(review)
        self.note("final reviews done")

    async def _sign(self) -> bool:
        """Our signature (by policy for small automated deals), then the counterparty's."""
        agreed = self.state.agreed
        assert agreed is not None and self.state.policy is not None
        value = agreed.terms.total_contract_value
        signatory = resolve_authority(
            Requirement(
                role=Role.DEAL_OWNER, min_authority=value, reason="signature on the agreed terms"
            ),
            self.state.request.participants,
        )
        self.state.closure_requirements.append(signatory)
        by_policy = (
            self.state.playbook == PlaybookName.AUTOMATED
            and value <= self.state.policy.automated_signature_limit
            and len(self.state.closure_requirements) == 1
            and not evaluate(agreed.terms, self.state.request.mandate).beyond
        )
        if by_policy:
            self.state.asked += 1
            record = DecisionRecord(
                request_id=f"clo-{self.state.asked}-signature-policy",
                kind=DecisionKind.SIGNATURE,
                role=signatory.role,
                approver="policy",
                approver_authority=self.state.policy.automated_signature_limit,
                verdict=Verdict.APPROVE,
                terms_version=agreed.version,
                comment=f"signed within policy {self.state.policy.version}",
                at=workflow.now(),
            )
            self.negotiation.record_decided([record], workflow.now())
            self.note("signed by policy (automated, within limits)")
        else:
            outcome = await self.ask(
                [(signatory, DecisionKind.SIGNATURE)], agreed, together=False, verdicts=_YES_NO
            )
            if not outcome.approved:
                who = outcome.deciding.approver if outcome.deciding else "a participant"
                await self._end(Outcome.WALKED_AWAY, f"{who} declined to sign")
                return False
        req = self.state.request
        await self.notify(
            f"contract/v{agreed.version}",
            "signature_request",
            [req.counterparty.email],
            f"Contract for signature (version {agreed.version})",
            f"Please sign the agreed terms, version {agreed.version}:\n{describe(agreed.terms, req.currency)}\n",
        )
        self.hand_over()
        self.note("contract sent for signature")
        response = await self.next_response(_SIGNING, "the counterparty's signature")
        if response.action == CounterpartyAction.WITHDRAW:
            await self._end(Outcome.WITHDRAWN, "the counterparty withdrew before signing")
            return False
        if response.action == CounterpartyAction.REJECT:
            await self._end(Outcome.REJECTED, "the counterparty refused to sign")
            return False
        self.state.signed_at = workflow.now()
        self.note("signed by both sides")
        return True

    async def _hand_off(self) -> None:
        agreed = self.state.agreed
        assert agreed is not None
        req = self.state.request
        team = req.holders(Role.IMPLEMENTATION) or req.holders(Role.DEAL_OWNER)
        await self.notify(
            "handoff",
            "handoff",
            [p.email for p in team],
            f"Signed: {req.counterparty.name} ({req.deal_type.value}), over to implementation",
            f"Negotiation {req.negotiation_id} is signed. Agreed terms, version {agreed.version}:\n"
            f"{describe(agreed.terms, req.currency)}\n",
        )
        self.state.close(Outcome.AGREED, self.state.outcome_reason or "agreed and signed")
        self.note("handed off to implementation")

    async def _end(self, outcome: Outcome, reason: str) -> None:
        self.state.close(outcome, reason)
        self.note(f"closure ended: {reason}")
