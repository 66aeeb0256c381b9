"""The measurement: baseline and Fitnest samples interleaved, then history events, then one
long negotiation; all on the same server and workers, so the ratios compare like with like."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from temporalio.client import Client

from bench.baseline import run_minimal
from bench.histories import events_of, negotiation_events
from bench.negotiations import run_closures, run_stubborn
from bench.report import EventCount, LongNegotiation, Options, Report, Sample, Throughput, machine
from bench.stage import Queues


async def measure(client: Client, queues: Queues, options: Options, temporal: Path) -> Report:
    """Measure everything ``options`` asks for against the workers serving ``queues``."""
    began = time.perf_counter()
    poll = options.poll_seconds
    # Warm-up, not measured: the first run of each workflow type loads its modules into the
    # sandbox, which would otherwise count against whichever workload ran first.
    await run_minimal(client, queues.baseline, 2)
    await run_closures(client, queues.fitnest, 1, poll_seconds=poll)

    minimal: list[Sample] = []
    closure: list[Sample] = []
    queries = 0
    for _ in range(options.repeats):  # interleaved, so drift during the run hits both alike
        sample, minimal_ids = await run_minimal(client, queues.baseline, options.negotiations)
        minimal.append(sample)
        sample, closure_ids, asked = await run_closures(
            client, queues.fitnest, options.negotiations, poll_seconds=poll
        )
        closure.append(sample)
        queries += asked

    minimal_events = await asyncio.gather(*(events_of(client, wid) for wid in minimal_ids))
    closure_events = await asyncio.gather(*(negotiation_events(client, n) for n in closure_ids))
    baseline = Throughput.of(
        "baseline: 1 activity + 1 signal",
        minimal,
        EventCount.of([{"workflow": events} for events, _ in minimal_events]),
    )
    fitnest = Throughput.of(
        "fitnest: accept opening + sign", closure, EventCount.of(closure_events)
    )

    long = await _long_negotiation(client, queues, options, fitnest.events)
    return Report(
        machine=machine(temporal),
        options=options,
        baseline=baseline,
        fitnest=fitnest,
        ratio=round(fitnest.per_second / baseline.per_second, 4),
        events_ratio=round(fitnest.events.mean / baseline.events.mean, 2),
        status_queries=queries + long[1],
        long=long[0],
        total_seconds=round(time.perf_counter() - began, 1),
    )


async def _long_negotiation(
    client: Client, queues: Queues, options: Options, closure: EventCount
) -> tuple[LongNegotiation, int]:
    """The stubborn negotiation's events, per round; and the status queries it took."""
    seconds, negotiation_id, queries = await run_stubborn(
        client, queues.fitnest, options.rounds, poll_seconds=options.poll_seconds
    )
    parent, _ = await events_of(client, negotiation_id)
    development, runs = await events_of(client, f"{negotiation_id}/development")
    # The parent's fixed cost is what an accepted-opening negotiation's parent needs; the rest
    # (the development movement's start and end included) is put down to the rounds.
    beyond = parent - closure.by_workflow["negotiation"]
    long = LongNegotiation(
        rounds=options.rounds,
        seconds=round(seconds, 2),
        parent_events=parent,
        development_events=development,
        development_runs=runs,
        parent_events_per_round=round(beyond / options.rounds, 2),
        development_events_per_round=round(development / options.rounds, 2),
    )
    return long, queries
