"""Automated negotiations driven the way a backend does: start, read the status, respond.

Every negotiation is the sample renewal (:func:`starters.sample.renewal_request`). Two plays:

- *simulated*: :class:`starters.simulate.SimulatedCounterparty` plays the other side; its pace
  (:data:`SIMULATED_STEP`) makes the sides meet after three rounds of development;
- *stubborn*: it counters every offer of ours with the same terms, inside our walk-away, until
  the strategy accepts them on the last round (``max_rounds``); then it signs.

Both read the ``status`` query every ``poll_seconds`` and answer what they see, through
:mod:`starters.client` like any backend.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

from temporalio.client import Client

from bench.stage import BenchError
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
from starters.sample import renewal_request
from starters.simulate import Personality, SimulatedCounterparty, play

#: Within the walk-away on every term of the sample renewal, never at its target.
STUBBORN_TERMS = Terms(
    total_contract_value=Decimal(50_000),
    discount_pct=Decimal(10),
    payment_days=45,
    term_months=24,
    liability_cap_multiple=Decimal(1),
)

#: The simulated counterparty's pace: it gives up 30 % of the gap each round, so the sides of the
#: sample renewal meet in the third round (at its default pace, half the gap, in the second).
SIMULATED_STEP = Decimal("0.3")
SIMULATED_ROUNDS = 3


def new_ids(kind: str, count: int) -> list[str]:
    """Fresh negotiation ids for one batch."""
    tag = uuid.uuid4().hex[:8]
    return [f"bench-{kind}-{tag}-{i:04d}" for i in range(count)]


async def start(client: Client, task_queue: str, request: NegotiationRequest) -> None:
    """Start ``request`` on ``task_queue``; :class:`BenchError` if its id was taken."""
    receipt = await api.start_negotiation(client, request, task_queue=task_queue)
    if not receipt.started:
        raise BenchError(f"{request.negotiation_id} was already started")


async def play_simulated(
    client: Client, task_queue: str, negotiation_id: str, *, poll_seconds: float, timeout: float
) -> None:
    """One automated negotiation played by the simulated counterparty, to its result."""
    await start(client, task_queue, renewal_request("automated", negotiation_id=negotiation_id))
    other_side = SimulatedCounterparty(Personality.AGREEABLE, step=SIMULATED_STEP)
    played = await play(
        client, negotiation_id, other_side, poll_seconds=poll_seconds, max_seconds=timeout
    )
    if played.outcome != Outcome.AGREED or played.rounds != SIMULATED_ROUNDS:
        raise BenchError(
            f"{negotiation_id}: expected agreed after {SIMULATED_ROUNDS} rounds, got "
            f"{played.outcome or 'still open'} after {played.rounds} (the strategy or the "
            "simulation changed: adjust SIMULATED_STEP)"
        )
    await asyncio.wait_for(api.get_result(client, negotiation_id), timeout)


async def run_simulated(
    client: Client, task_queue: str, count: int, *, poll_seconds: float, timeout: float = 300.0
) -> tuple[float, list[str]]:
    """``count`` simulated negotiations at once, start to result: the seconds and their ids."""
    ids = new_ids("simulated", count)
    began = time.perf_counter()
    await asyncio.gather(
        *(
            play_simulated(client, task_queue, nid, poll_seconds=poll_seconds, timeout=timeout)
            for nid in ids
        )
    )
    return time.perf_counter() - began, ids


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

    async def send(self, action: CounterpartyAction, terms: Terms | None = None) -> str:
        """Send the next message of this counterparty; its message id."""
        sequence = next(self._sequence)
        message_id = f"{self.negotiation_id}-m{sequence}"
        await api.send_response(
            self.client,
            self.negotiation_id,
            CounterpartyResponse(
                message_id=message_id,
                sequence=sequence,
                action=action,
                terms=terms,
            ),
        )
        return message_id

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


def _answered_after(version: int) -> Callable[[NegotiationStatus], bool]:
    """Our next offer is out, or the strategy accepted theirs and we are in closure."""

    def check(status: NegotiationStatus) -> bool:
        ours = status.our_terms
        return status.movement == Movement.CLOSURE or (ours is not None and ours.version > version)

    return check


async def play_stubborn(counterparty: Counterparty, task_queue: str, rounds: int) -> None:
    """Start a negotiation of ``rounds`` rounds: counter each offer of ours with the same terms."""
    request = renewal_request(
        "automated", negotiation_id=counterparty.negotiation_id, mandate__max_rounds=rounds
    )
    await start(counterparty.client, task_queue, request)
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


async def run_stubborn(
    client: Client, task_queue: str, rounds: int, *, poll_seconds: float, timeout: float = 120.0
) -> tuple[float, str]:
    """One stubborn negotiation of ``rounds`` rounds: its seconds, start to result, and its id."""
    (negotiation_id,) = new_ids("stubborn", 1)
    player = Counterparty(client, negotiation_id, poll_seconds, timeout)
    began = time.perf_counter()
    await play_stubborn(player, task_queue, rounds)
    return time.perf_counter() - began, negotiation_id
