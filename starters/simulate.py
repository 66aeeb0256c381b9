"""A simulated counterparty (and, on request, simulated approvers) for demos and load.

The counterparty's choices are a pure function of the negotiation's status and its personality,
so a seeded simulation plays the same way every time. Everything it needs to know comes from the
status, so a simulation started again on a running negotiation picks up where it stands: it
numbers its messages after the last sequence the negotiation took in, and moves on from the
counterparty's last offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from temporalio.client import Client

from negotiation.models import (
    CounterpartyAction,
    CounterpartyResponse,
    DealType,
    HumanDecision,
    Movement,
    NegotiationRequest,
    NegotiationStatus,
    Verdict,
)
from negotiation.reviews import SELL_SIDE
from negotiation.terms import Terms
from starters.client import (
    DecisionRejected,
    NegotiationClosed,
    decide,
    ensure_open,
    get_request,
    get_status,
    send_response,
)


class Personality(StrEnum):
    """How the simulated counterparty plays."""

    AGREEABLE = "agreeable"  # asks for a little, meets halfway, accepts when close
    TOUGH = "tough"  # opens far beyond our walk-away and moves slowly
    REJECTING = "rejecting"  # counters once, then rejects
    SILENT = "silent"  # never answers: the negotiation expires


class SimulatedCounterparty:
    """Plays the other side of one negotiation."""

    def __init__(
        self,
        personality: Personality = Personality.AGREEABLE,
        seed: int = 0,
        *,
        step: Decimal | None = None,
    ) -> None:
        """``step``: the share of the gap to our offer it gives up each round (None: its
        personality's pace); a smaller step plays more rounds before the sides meet."""
        self.personality = personality
        self.step = step
        self.rng = random.Random(seed)
        self.sequence = 0
        self.answered: set[int] = set()
        self.signed = False
        self.last: Terms | None = None

    def _push(self, terms: Terms, deal_type: DealType, pressure: Decimal) -> Terms:
        """Terms moved against us by ``pressure`` (a share), the way this side of the table wants."""
        sell = deal_type in SELL_SIDE  # we sell: they want to pay less, later, with more cover
        sign = -1 if sell else 1
        value = terms.total_contract_value * (1 + sign * pressure)
        discount = terms.discount_pct + (-sign) * pressure * 50
        days = terms.payment_days + (-sign) * int(pressure * 100)
        return terms.replace(
            total_contract_value=value.quantize(Decimal("0.01")),
            discount_pct=min(Decimal(100), max(Decimal(0), discount)).quantize(Decimal("0.01")),
            payment_days=min(365, max(0, days)),
        )

    def _toward(self, theirs: Terms, ours: Terms, share: Decimal) -> Terms:
        def mid(a: Decimal, b: Decimal) -> Decimal:
            return (a + (b - a) * share).quantize(Decimal("0.01"))

        return theirs.replace(
            total_contract_value=mid(theirs.total_contract_value, ours.total_contract_value),
            discount_pct=mid(theirs.discount_pct, ours.discount_pct),
            payment_days=int(mid(Decimal(theirs.payment_days), Decimal(ours.payment_days))),
        )

    def _next(
        self, action: CounterpartyAction, terms: Terms | None = None, note: str = ""
    ) -> CounterpartyResponse:
        self.sequence += 1
        return CounterpartyResponse(
            message_id=f"sim-{self.sequence}-{self.rng.getrandbits(32):08x}",
            sequence=self.sequence,
            action=action,
            terms=terms,
            note=note,
        )

    def answer(self, status: NegotiationStatus) -> CounterpartyResponse | None:
        """What to send now, given the negotiation's status (None: nothing to say)."""
        if status.outcome is not None or self.personality == Personality.SILENT:
            return None
        # Messages numbered at or below what the negotiation took in are stale: whoever sent them
        # (this simulation before a restart, or a backend), go on after the last one.
        self.sequence = max(self.sequence, status.last_sequence)
        if status.pending_decisions:
            return None  # our team decides first; in closure, we sign once it has signed
        if status.movement == Movement.CLOSURE:
            if self.signed:
                return None
            self.signed = True
            return self._next(CounterpartyAction.SIGN, note="signed")
        ours = status.our_terms
        if status.movement not in (Movement.OPENING, Movement.DEVELOPMENT) or ours is None:
            return None
        if ours.version in self.answered:
            return None
        if status.their_terms is not None and status.their_terms.version > ours.version:
            return None  # our team has not answered yet
        self.answered.add(ours.version)
        if self.last is None and status.their_terms is not None:
            self.last = status.their_terms.terms  # started again: go on from their last offer
        if self.personality == Personality.REJECTING and len(self.answered) > 1:
            return self._next(CounterpartyAction.REJECT, note="we go another way")
        if self.last is None:
            pressure = Decimal("0.35") if self.personality == Personality.TOUGH else Decimal("0.08")
            self.last = self._push(ours.terms, status.deal_type, pressure)
            return self._next(CounterpartyAction.COUNTER, self.last, "our counterproposal")
        gap = abs(ours.terms.total_contract_value - self.last.total_contract_value)
        if gap <= ours.terms.total_contract_value * Decimal("0.02"):
            return self._next(CounterpartyAction.ACCEPT, note="agreed")
        share = self.step or (
            Decimal("0.15") if self.personality == Personality.TOUGH else Decimal("0.5")
        )
        self.last = self._toward(self.last, ours.terms, share)
        return self._next(CounterpartyAction.COUNTER, self.last, "moving toward you")


class SimulationResult(BaseModel):
    """How one simulated negotiation ended."""

    negotiation_id: str
    outcome: str | None
    rounds: int


async def approve_pending(
    client: Client, status: NegotiationStatus, request: NegotiationRequest
) -> None:
    """Simulated approvers: each pending decision is approved by a participant able to take it
    (its role, and the authority it needs); the others wait for a person."""
    for pending in status.pending_decisions:
        able = [
            p
            for p in request.participants
            if p.role == pending.role and p.authority_limit >= pending.required_authority
        ]
        if not able:
            continue
        decision = HumanDecision(
            message_id=f"sim-{pending.request_id}",
            request_id=pending.request_id,
            approver=able[0].name,
            verdict=Verdict.APPROVE,
            terms_version=pending.terms_version,
            comment="approved by the simulation",
        )
        # Already decided or superseded: the next status shows what is pending now.
        with contextlib.suppress(DecisionRejected):
            await decide(client, status.negotiation_id, decision)


async def play(
    client: Client,
    negotiation_id: str,
    counterparty: SimulatedCounterparty,
    *,
    approve: bool = False,
    poll_seconds: float = 0.3,
    max_seconds: float = 600.0,
) -> SimulationResult:
    """Play the counterparty (and with ``approve`` the negotiation's own participants) until the
    negotiation closes or ``max_seconds`` pass.

    Raises NegotiationNotFound for an unknown id and NegotiationClosed for a negotiation that has
    ended already, before anything is sent; Temporal's errors (RPCError, a failed query) pass.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + max_seconds
    status = await get_status(client, negotiation_id)
    await ensure_open(client, negotiation_id)
    request = await get_request(client, negotiation_id) if approve else None
    while status.outcome is None and loop.time() < give_up:
        response = counterparty.answer(status)
        try:
            if response is not None:
                await send_response(client, negotiation_id, response)
            if request is not None and status.pending_decisions:
                await approve_pending(client, status, request)
        except NegotiationClosed:
            break
        await asyncio.sleep(poll_seconds)
        status = await get_status(client, negotiation_id)
    return SimulationResult(
        negotiation_id=negotiation_id, outcome=status.outcome, rounds=status.round
    )
