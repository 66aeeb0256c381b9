"""Latency: the ``decide`` update and a counterparty signal until ``status`` shows it.

Each against the same interaction with a trivial workflow (an update that only stores a number; a
signal until a query shows it), measured one at a time and interleaved sample by sample, so that
both see the same load. Between samples the bench waits, untimed, until the negotiation has done
what the sample set off, so each sample starts from a quiet workflow.

- ``decide``: a conductor-led negotiation waits for its deal owner's decision on a counteroffer;
  the sample is ``starters.client.decide`` (a rejection) until its receipt comes back.
- counterparty signal: an automated negotiation of many rounds; the sample is
  ``send_response`` (a counteroffer) until ``status`` shows their terms numbered as the latest
  offer (the target: the movement has acted on it), and, from the same status reads, until it
  acknowledges it (``last_received``: taken in). Both are timed at the first status read that
  shows them, one read per poll, so neither pays for a read the other needed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowHandle

from bench.baseline import TrivialInput, TrivialWorkflow
from bench.negotiations import STUBBORN_TERMS, Counterparty, new_ids, start
from bench.report import Percentiles, Spread, Target, table
from bench.stage import BenchError, Stage
from negotiation.models import CounterpartyAction, HumanDecision, Outcome, Verdict
from starters import client as api
from starters.sample import renewal_request


class LatencyOptions(BaseModel):
    """How much to measure."""

    samples: int = Field(default=30, ge=1, description="Samples of each kind per repetition.")
    repeats: int = Field(default=3, ge=1, description="Repetitions.")
    poll_seconds: float = Field(
        default=0.005, gt=0, description="How often a signal's effect is looked for in a query."
    )


class Latency(BaseModel):
    """One interaction, Fitnest's and the trivial workflow's, in milliseconds."""

    fitnest: Percentiles
    baseline: Percentiles
    p99_ratio: float
    p50_ratio: float
    repeat_p99_ratios: Spread = Field(description="The p99 ratio of each repetition alone.")


class LatencyResult(BaseModel):
    """What one latency run measured."""

    options: LatencyOptions
    decide: Latency
    signal_to_status: Latency
    signal_to_effect: Latency = Field(
        description="Until the status shows their terms numbered (the movement acted on it)."
    )
    seconds: float
    targets: list[Target]


async def _timed(action: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await action()
    return (time.perf_counter() - began) * 1000


async def _until(check: Callable[[], Awaitable[bool]], poll: float, timeout: float = 60.0) -> None:
    give_up = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > give_up:
            raise BenchError("a signal's effect never showed in the query")
        await asyncio.sleep(poll)


async def _parked_for_decision(client: Client, task_queue: str, count: int) -> list[str]:
    """``count`` conductor-led negotiations, each waiting for its deal owner's decision."""
    ids = new_ids("decide", count)

    async def park(negotiation_id: str) -> None:
        await start(
            client, task_queue, renewal_request("conductor_led", negotiation_id=negotiation_id)
        )
        player = Counterparty(client, negotiation_id, 0.05, 120)
        await player.until(lambda s: s.our_terms is not None, "the opening offer")
        await player.send(CounterpartyAction.COUNTER, STUBBORN_TERMS)
        await player.until(lambda s: bool(s.pending_decisions), "the deal owner's decision request")

    await asyncio.gather(*(park(nid) for nid in ids))
    return ids


async def _decide(client: Client, negotiation_id: str) -> float:
    """Time the deal owner's rejection; then wait, untimed, for the negotiation to close."""
    status = await api.get_status(client, negotiation_id)
    (pending,) = status.pending_decisions
    decision = HumanDecision(
        message_id=f"{negotiation_id}-d1",
        request_id=pending.request_id,
        approver="ana",
        verdict=Verdict.REJECT,
        terms_version=pending.terms_version,
    )
    millis = await _timed(lambda: api.decide(client, negotiation_id, decision))
    result = await asyncio.wait_for(api.get_result(client, negotiation_id), 60)
    if result.outcome != Outcome.WALKED_AWAY:
        raise BenchError(f"{negotiation_id}: a rejected counteroffer ended {result.outcome}")
    return millis


async def _signal_to_status(player: Counterparty, poll: float) -> tuple[float, float]:
    """Time a counteroffer until ``status`` acknowledges it, and until it shows their terms.

    Then wait, untimed, for our answer.
    """
    client, nid = player.client, player.negotiation_id
    before = await api.get_status(client, nid)
    seen = before.their_terms.version if before.their_terms else 0
    sent: list[str] = []
    received: float | None = None
    effect: float | None = None

    async def both() -> bool:
        """One status read per poll, for both: each is timed at the first read that shows it."""
        nonlocal received, effect
        status = await api.get_status(client, nid)
        now = (time.perf_counter() - began) * 1000
        last = status.last_received
        if received is None and last is not None and last.message_id == sent[0]:
            received = now
        theirs = status.their_terms
        if effect is None and theirs is not None and theirs.version > seen:
            effect = now
        return received is not None and effect is not None

    began = time.perf_counter()
    sent.append(await player.send(CounterpartyAction.COUNTER, STUBBORN_TERMS))
    await _until(both, poll)
    assert received is not None and effect is not None
    await player.until(
        lambda s: (
            s.our_terms is not None
            and s.their_terms is not None
            and s.our_terms.version > s.their_terms.version
        ),
        "our answer",
    )
    return received, effect


async def _trivial_update(handle: WorkflowHandle[Any, Any], number: int) -> float:
    async def put() -> int:
        return await handle.execute_update(TrivialWorkflow.put, number)

    return await _timed(put)


async def _trivial_signal(client: Client, workflow_id: str, number: int, poll: float) -> float:
    handle = client.get_workflow_handle(workflow_id)

    async def shown() -> bool:
        return await handle.query(TrivialWorkflow.seen) >= number

    async def send_and_see() -> None:
        await handle.signal(TrivialWorkflow.poke, number)
        await _until(shown, poll)

    return await _timed(send_and_see)


def _latency(fitnest: list[list[float]], baseline: list[list[float]]) -> Latency:
    f = Percentiles.of([m for rep in fitnest for m in rep])
    b = Percentiles.of([m for rep in baseline for m in rep])
    per_repeat = [
        Percentiles.of(fr).p99 / Percentiles.of(br).p99
        for fr, br in zip(fitnest, baseline, strict=True)
    ]
    return Latency(
        fitnest=f,
        baseline=b,
        p99_ratio=round(f.p99 / b.p99, 2),
        p50_ratio=round(f.p50 / b.p50, 2),
        repeat_p99_ratios=Spread.of(per_repeat, 2),
    )


async def measure_latency(stage: Stage, options: LatencyOptions) -> LatencyResult:
    """Interleave Fitnest's and the trivial workflow's samples of both interactions."""
    client, began, poll = stage.client, time.perf_counter(), options.poll_seconds
    fitnest_q = stage.fitnest.task_queue
    trivial_id = f"bench-trivial-{uuid.uuid4().hex[:8]}"
    trivial = await client.start_workflow(
        TrivialWorkflow.run,
        TrivialInput(),
        id=trivial_id,
        task_queue=stage.baseline.task_queue,
    )
    (long_id,) = new_ids("latency", 1)
    rounds = options.samples * options.repeats + 1
    await start(
        client,
        fitnest_q,
        renewal_request("automated", negotiation_id=long_id, mandate__max_rounds=rounds),
    )
    player = Counterparty(client, long_id, 0.02, 120)
    await player.until(lambda s: s.our_terms is not None, "the opening offer")

    decide: tuple[list[list[float]], list[list[float]]] = ([], [])
    signal: tuple[list[list[float]], list[list[float]]] = ([], [])
    effect: list[list[float]] = []
    number = 0
    for _ in range(options.repeats):
        parked = await _parked_for_decision(client, fitnest_q, options.samples)
        for lists in (*decide, *signal, effect):
            lists.append([])
        for negotiation_id in parked:
            number += 1
            decide[1][-1].append(await _trivial_update(trivial, number))
            decide[0][-1].append(await _decide(client, negotiation_id))
            number += 1
            signal[1][-1].append(await _trivial_signal(client, trivial_id, number, poll))
            received, shown = await _signal_to_status(player, poll)
            signal[0][-1].append(received)
            effect[-1].append(shown)
    await trivial.signal(TrivialWorkflow.finish)
    await client.get_workflow_handle(long_id).terminate("latency measured")

    d, s = _latency(*decide), _latency(*signal)
    terms = _latency(effect, signal[1])
    return LatencyResult(
        options=options,
        decide=d,
        signal_to_status=s,
        signal_to_effect=terms,
        seconds=round(time.perf_counter() - began, 1),
        targets=[
            Target(name="decide p99 over a trivial update's p99", value=d.p99_ratio, limit=1.5),
            Target(
                name="counteroffer until status shows their terms, p99 over trivial "
                "signal-to-query p99",
                value=terms.p99_ratio,
                limit=1.5,
            ),
            Target(
                name="counterparty signal to status (acknowledged) p99 over trivial "
                "signal-to-query p99",
                value=s.p99_ratio,
                limit=1.5,
            ),
        ],
    )


def render_latency(result: LatencyResult) -> list[str]:
    """The latency run as text."""
    o = result.options
    rows = [
        (
            "interaction (ms)",
            "p50",
            "p95",
            "p99",
            "max",
            "p50 ratio",
            "p99 ratio",
            "p99 ratio per repeat",
        )
    ]
    for name, lat, base in (
        ("decide update", result.decide, "trivial update"),
        ("counterparty signal -> status", result.signal_to_status, "trivial signal -> query"),
        ("counterparty signal -> terms", result.signal_to_effect, "trivial signal -> query"),
    ):
        for label, p in ((f"fitnest: {name}", lat.fitnest), (f"baseline: {base}", lat.baseline)):
            ratios = (
                (f"{lat.p50_ratio:g}", f"{lat.p99_ratio:g}", lat.repeat_p99_ratios.text(".2f"))
                if label.startswith("fitnest")
                else ("", "", "")
            )
            rows.append(
                (label, f"{p.p50:.1f}", f"{p.p95:.1f}", f"{p.p99:.1f}", f"{p.max:.1f}", *ratios)
            )
    return [
        f"latency: {o.samples} samples of each kind x {o.repeats} repetitions, one at a time, "
        f"interleaved; signal effects polled every {o.poll_seconds * 1000:g} ms",
        *table(rows),
    ]
