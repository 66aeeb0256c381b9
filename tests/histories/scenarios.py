"""Every playbook path, played the way a backend would: for recording histories and for replaying.

``python -m tests.histories.record`` plays them all on the time-skipping server and writes their
histories here; ``tests/integration/test_without_workflow_cache.py`` plays those that need no time
skipping on the dev server with the worker's workflow cache off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from negotiation.models import DecisionKind, NegotiationRequest, NegotiationStatus, Outcome
from tests.workflows.harness import Negotiation, make_request, terms

#: Who answers for each role in :func:`tests.workflows.harness.make_request`.
APPROVER = {"deal_owner": "ana", "legal": "lee", "finance": "fay", "executive": "eve"}
WITHIN = terms(50000, 10, 45)  # within every walk-away, short of target
BEYOND = terms(40000, 10, 45)  # price beyond the 48k walk-away
SENT_FOR_SIGNATURE = "contract sent for signature"

Starter = Callable[[NegotiationRequest], Awaitable[Negotiation]]


async def approve_until_closed(n: Negotiation) -> NegotiationStatus:
    """Approve every decision asked for, sign when the contract comes, until there is an outcome."""
    signed = False
    decided: set[str] = set()

    def something_to_do(s: NegotiationStatus) -> bool:
        fresh = any(p.request_id not in decided for p in s.pending_decisions)
        to_sign = not signed and any(e.text == SENT_FOR_SIGNATURE for e in s.timeline)
        return s.outcome is not None or fresh or to_sign

    while True:
        s = await n.until(something_to_do)
        if s.outcome is not None:
            return s
        fresh = [p for p in s.pending_decisions if p.request_id not in decided]
        for p in fresh:
            await n.decide(p.request_id, APPROVER[p.role.value])
            decided.add(p.request_id)
        if not fresh and not signed:
            await n.respond("sign")
            signed = True


async def conductor_agreed(n: Negotiation) -> NegotiationStatus:
    """The deal owner counters the counteroffer with her own terms; they accept; both sign."""
    await n.respond("counter", WITHIN)
    pending = await n.pending("deal_owner")
    await n.decide(pending.request_id, "ana", "revise", revised=terms(56000, 5, 40))
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("accept")
    return await approve_until_closed(n)


async def conductor_walked_away(n: Negotiation) -> NegotiationStatus:
    """Beyond the walk-away: deal owner and finance approve, the executive refuses."""
    await n.respond("counter", BEYOND)
    await n.approve("deal_owner", "ana")
    await n.approve("finance", "fay")
    executive = await n.pending("executive")
    await n.decide(executive.request_id, "eve", "reject")
    return await n.until(lambda s: s.outcome is not None)


async def ensemble_escalation_agreed(n: Negotiation) -> NegotiationStatus:
    """Every role asked at once; the deal owner revises; accepted, approved and signed."""
    await n.respond("counter", terms(45000, 10, 45))
    s = await n.until(lambda s: len(s.pending_decisions) >= 2)
    owner = next(p for p in s.pending_decisions if p.role.value == "deal_owner")
    await n.decide(owner.request_id, "ana", "revise", revised=terms(55000, 5, 40))
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("accept")
    return await approve_until_closed(n)


async def ensemble_walked_away(n: Negotiation) -> NegotiationStatus:
    """A 300k deal: owner, finance and executive asked at once; finance refuses, the round ends."""
    await n.respond("counter", terms(260000, 10, 45))
    s = await n.until(lambda s: len(s.pending_decisions) == 3)
    refusing = next(p for p in s.pending_decisions if p.role.value == "finance")
    await n.decide(refusing.request_id, "fay", "reject")
    return await n.until(lambda s: s.outcome is not None)


async def automated_agreed(n: Negotiation) -> NegotiationStatus:
    """The strategy answers within the mandate; accepted; signed by policy and by them."""
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", WITHIN)
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("accept")
    return await approve_until_closed(n)


async def automated_escalation_agreed(n: Negotiation) -> NegotiationStatus:
    """Beyond the walk-away: finance and executive asked together, both approve; signed."""
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", BEYOND)
    await n.until(
        lambda s: sum(p.kind == DecisionKind.ESCALATION for p in s.pending_decisions) == 2
    )
    return await approve_until_closed(n)


async def conductor_expired(n: Negotiation) -> NegotiationStatus:
    """Nobody takes the deal owner's decision: the deadline passes (needs time skipping)."""
    await n.respond("counter", WITHIN)
    await n.pending("deal_owner")
    return (await n.result()).status


async def automated_rejected(n: Negotiation) -> NegotiationStatus:
    """The counterparty rejects our counter."""
    await n.respond("counter", WITHIN)
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("reject", note="too expensive")
    return await n.until(lambda s: s.outcome is not None)


@dataclass(frozen=True)
class Scenario:
    """One path through a playbook and the outcome it must reach."""

    name: str
    playbook: str
    play: Callable[[Negotiation], Awaitable[NegotiationStatus]]
    outcome: Outcome
    needs_time_skipping: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def request(self, now: datetime | None = None) -> NegotiationRequest:
        """A fresh request for this scenario's playbook."""
        return make_request(self.playbook, now=now, **self.overrides)


SCENARIOS = (
    Scenario("conductor-agreed", "conductor_led", conductor_agreed, Outcome.AGREED),
    Scenario("conductor-walked-away", "conductor_led", conductor_walked_away, Outcome.WALKED_AWAY),
    Scenario("conductor-expired", "conductor_led", conductor_expired, Outcome.EXPIRED, True),
    Scenario(
        "ensemble-escalation-agreed",
        "collaborative_ensemble",
        ensemble_escalation_agreed,
        Outcome.AGREED,
    ),
    Scenario(
        "ensemble-walked-away",
        "collaborative_ensemble",
        ensemble_walked_away,
        Outcome.WALKED_AWAY,
        overrides={
            "opening_terms__total_contract_value": "300000",
            "mandate__total_contract_value": {"target": "300000", "walk_away": "240000"},
        },
    ),
    Scenario("automated-agreed", "automated", automated_agreed, Outcome.AGREED),
    Scenario(
        "automated-escalation-agreed", "automated", automated_escalation_agreed, Outcome.AGREED
    ),
    Scenario("automated-rejected", "automated", automated_rejected, Outcome.REJECTED),
)
