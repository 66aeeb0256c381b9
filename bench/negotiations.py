"""Automated negotiations driven the way a backend does: start, read the status, respond.

The simulated counterparty reads the ``status`` query every ``poll_seconds`` and answers what it
sees, through :mod:`starters.client` like any backend. Two plays:

- *closure*: it accepts our opening offer, and signs once the negotiation is in closure;
- *stubborn*: it counters every offer of ours with the same terms, inside our walk-away, until
  the strategy accepts them on the last round (``max_rounds``); then it signs.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio.client import Client

from bench.report import Sample
from negotiation.models import (
    CounterpartyAction,
    CounterpartyResponse,
    Movement,
    NegotiationRequest,
    NegotiationStatus,
    Outcome,
)
from negotiation.terms import Terms
from starters import client as api

#: Within the walk-away on every term of :func:`automated_request`, never at its target.
STUBBORN_TERMS = Terms(
    total_contract_value=Decimal(50_000),
    discount_pct=Decimal(10),
    payment_days=45,
    term_months=24,
    liability_cap_multiple=Decimal(1),
)


class BenchError(RuntimeError):
    """A measured negotiation did not go the way the bench plays it; the message says how."""


def automated_request(
    negotiation_id: str, *, max_rounds: int = 6, now: datetime | None = None
) -> NegotiationRequest:
    """A 60k EUR renewal (48k walk-away) on the automated playbook, with a full team."""
    now = now or datetime.now(UTC)
    team = [
        ("ana", "deal_owner", "100000"),
        ("lee", "legal", "0"),
        ("fay", "finance", "1000000"),
        ("eve", "executive", "10000000"),
        ("ivo", "implementation", "0"),
    ]
    return NegotiationRequest.model_validate(
        {
            "negotiation_id": negotiation_id,
            "deal_type": "renewal",
            "counterparty": {"name": "Northwind Traders", "email": "buyer@northwind.example"},
            "currency": "EUR",
            "opening_terms": {
                "total_contract_value": "60000",
                "discount_pct": "0",
                "payment_days": 30,
                "term_months": 24,
                "liability_cap_multiple": "1",
            },
            "mandate": {
                "total_contract_value": {"target": "60000", "walk_away": "48000"},
                "discount_pct": {"target": "0", "walk_away": "12"},
                "payment_days": {"target": "30", "walk_away": "60"},
                "max_rounds": max_rounds,
                "deadline": (now + timedelta(days=90)).isoformat(),
            },
            "participants": [
                {"name": n, "role": r, "authority_limit": a, "email": f"{n}@fitnest.example"}
                for n, r, a in team
            ],
            "playbook": "automated",
        }
    )


class Counterparty:
    """The simulated other side of one negotiation; counts the status queries it makes."""

    def __init__(
        self, client: Client, negotiation_id: str, poll_seconds: float, timeout: float
    ) -> None:
        """Play ``negotiation_id``; give up after ``timeout`` seconds on any one wait."""
        self.client = client
        self.negotiation_id = negotiation_id
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self.queries = 0
        self._sequence = itertools.count(1)

    async def until(
        self, check: Callable[[NegotiationStatus], bool], what: str
    ) -> NegotiationStatus:
        """Read the status until ``check`` holds; :class:`BenchError` when it never does."""
        give_up = time.monotonic() + self.timeout
        while True:
            self.queries += 1
            status = await api.get_status(self.client, self.negotiation_id)
            if check(status):
                return status
            if status.outcome is not None or time.monotonic() > give_up:
                raise BenchError(
                    f"{self.negotiation_id}: waited for {what}, got movement "
                    f"{status.movement.value}, round {status.round}, outcome {status.outcome}"
                )
            await asyncio.sleep(self.poll_seconds)

    async def send(self, action: CounterpartyAction, terms: Terms | None = None) -> None:
        """Send the next message of this counterparty."""
        sequence = next(self._sequence)
        await api.send_response(
            self.client,
            self.negotiation_id,
            CounterpartyResponse(
                message_id=f"{self.negotiation_id}-m{sequence}",
                sequence=sequence,
                action=action,
                terms=terms,
            ),
        )

    async def sign_when_in_closure(self) -> None:
        """Sign once the negotiation is in closure (an earlier signature would be refused)."""
        await self.until(lambda s: s.movement == Movement.CLOSURE, "closure")
        await self.send(CounterpartyAction.SIGN)

    async def agreed(self, rounds: int) -> None:
        """Wait for the result; :class:`BenchError` unless agreed after ``rounds`` rounds."""
        try:
            result = await asyncio.wait_for(
                api.get_result(self.client, self.negotiation_id), self.timeout
            )
        except TimeoutError:
            raise BenchError(
                f"{self.negotiation_id}: no result within {self.timeout:.0f} s (a failing "
                "workflow task retries forever: look for the worker's warnings above)"
            ) from None
        if result.outcome != Outcome.AGREED or result.kpis.rounds != rounds:
            raise BenchError(
                f"{self.negotiation_id}: expected agreed after {rounds} round(s), got "
                f"{result.outcome.value} after {result.kpis.rounds}: {result.outcome_reason}"
            )


async def _start(client: Client, task_queue: str, request: NegotiationRequest) -> None:
    receipt = await api.start_negotiation(client, request, task_queue=task_queue)
    if not receipt.started:
        raise BenchError(f"{request.negotiation_id} was already started")


async def play_closure(counterparty: Counterparty, task_queue: str) -> None:
    """Start a negotiation; accept the opening offer, sign in closure, wait for the result."""
    await _start(counterparty.client, task_queue, automated_request(counterparty.negotiation_id))
    await counterparty.until(lambda s: s.our_terms is not None, "the opening offer")
    await counterparty.send(CounterpartyAction.ACCEPT)
    await counterparty.sign_when_in_closure()
    await counterparty.agreed(rounds=0)


def _answered_after(version: int) -> Callable[[NegotiationStatus], bool]:
    """Our next offer is out, or the strategy accepted theirs and we are in closure."""

    def check(status: NegotiationStatus) -> bool:
        ours = status.our_terms
        return status.movement == Movement.CLOSURE or (ours is not None and ours.version > version)

    return check


async def play_stubborn(counterparty: Counterparty, task_queue: str, rounds: int) -> None:
    """Start a negotiation of ``rounds`` rounds: counter each offer of ours with the same terms."""
    request = automated_request(counterparty.negotiation_id, max_rounds=rounds)
    await _start(counterparty.client, task_queue, request)
    status = await counterparty.until(lambda s: s.our_terms is not None, "the opening offer")
    for round_no in range(1, rounds + 1):
        assert status.our_terms is not None
        answered = status.our_terms.version
        await counterparty.send(CounterpartyAction.COUNTER, STUBBORN_TERMS)
        status = await counterparty.until(
            _answered_after(answered), f"our answer in round {round_no}"
        )
        if status.movement == Movement.CLOSURE and round_no < rounds:
            raise BenchError(
                f"{counterparty.negotiation_id}: agreed in round {round_no}, before the "
                f"last round ({rounds}): the stubborn terms no longer keep the strategy countering"
            )
    await counterparty.sign_when_in_closure()
    await counterparty.agreed(rounds=rounds)


def new_ids(kind: str, count: int) -> list[str]:
    """Fresh negotiation ids for one batch."""
    tag = uuid.uuid4().hex[:8]
    return [f"bench-{kind}-{tag}-{i:04d}" for i in range(count)]


async def run_closures(
    client: Client, task_queue: str, count: int, *, poll_seconds: float, timeout: float = 120.0
) -> tuple[Sample, list[str], int]:
    """``count`` closure negotiations at once: the sample, their ids, the status queries made."""
    players = [
        Counterparty(client, nid, poll_seconds, timeout) for nid in new_ids("closure", count)
    ]
    began = time.perf_counter()
    await asyncio.gather(*(play_closure(p, task_queue) for p in players))
    sample = Sample.of(count, time.perf_counter() - began)
    return sample, [p.negotiation_id for p in players], sum(p.queries for p in players)


async def run_stubborn(
    client: Client, task_queue: str, rounds: int, *, poll_seconds: float, timeout: float = 120.0
) -> tuple[float, str, int]:
    """One stubborn negotiation of ``rounds`` rounds: seconds, its id, the status queries made."""
    (negotiation_id,) = new_ids("stubborn", 1)
    player = Counterparty(client, negotiation_id, poll_seconds, timeout)
    began = time.perf_counter()
    await play_stubborn(player, task_queue, rounds)
    return time.perf_counter() - began, negotiation_id, player.queries
