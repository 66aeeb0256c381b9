"""The measurement: Fitnest samples bracketed by baseline samples, then history events, then one
long negotiation; all on the same server and workers, so the ratios compare like with like."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from bench.baseline import run_minimal
from bench.histories import events_of, negotiation_events
from bench.negotiations import run_closures, run_stubborn
from bench.report import EventCount, LongNegotiation, Options, Report, Sample, Throughput, machine
from bench.stage import Queues


@dataclass
class _Samples:
    """Timed samples of both workloads and the ids of the last batch of each."""

    minimal: list[Sample] = field(default_factory=list)
    closure: list[Sample] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    minimal_ids: list[str] = field(default_factory=list)
    closure_ids: list[str] = field(default_factory=list)
    queries: int = 0


async def measure(client: Client, queues: Queues, options: Options, temporal: Path) -> Report:
    """Measure everything ``options`` asks for against the workers serving ``queues``."""
    began = time.perf_counter()
    # Warm-up, not measured: the first run of each workflow type loads its modules into the
    # sandbox, which would otherwise count against whichever workload ran first.
    await run_minimal(client, queues.baseline, 2)
    await run_closures(client, queues.fitnest, 1, poll_seconds=options.poll_seconds)

    samples = await _sample(client, queues, options)
    minimal_events = await asyncio.gather(*(events_of(client, wid) for wid in samples.minimal_ids))
    closure_events = await asyncio.gather(
        *(negotiation_events(client, nid) for nid in samples.closure_ids)
    )
    baseline = Throughput.of(
        "baseline: 1 activity + 1 signal",
        samples.minimal,
        EventCount.of([{"workflow": events} for events, _ in minimal_events]),
    )
    fitnest = Throughput.of(
        "fitnest: accept opening + sign", samples.closure, EventCount.of(closure_events)
    )
    long, long_queries = await _long_negotiation(client, queues, options, fitnest.events)
    return Report(
        machine=machine(temporal),
        options=options,
        baseline=baseline,
        fitnest=fitnest,
        ratio=round(statistics.median(samples.ratios), 4),
        sample_ratios=[round(r, 4) for r in samples.ratios],
        events_ratio=round(fitnest.events.mean / baseline.events.mean, 2),
        status_queries=samples.queries + long_queries,
        long=long,
        total_seconds=round(time.perf_counter() - began, 1),
    )


async def _sample(client: Client, queues: Queues, options: Options) -> _Samples:
    """B F B F B ... B: each Fitnest sample is read against the baseline just before and after.

    Bracketing cancels slow drift and load from other processes better than comparing medians;
    baseline samples are short (well under a second), so they cost little.
    """
    found = _Samples()
    sample, found.minimal_ids = await run_minimal(client, queues.baseline, options.negotiations)
    found.minimal.append(sample)
    for _ in range(options.repeats):
        closure, found.closure_ids, asked = await run_closures(
            client, queues.fitnest, options.negotiations, poll_seconds=options.poll_seconds
        )
        sample, found.minimal_ids = await run_minimal(client, queues.baseline, options.negotiations)
        around = statistics.fmean([found.minimal[-1].per_second, sample.per_second])
        found.ratios.append(closure.per_second / around)
        found.closure.append(closure)
        found.minimal.append(sample)
        found.queries += asked
    return found


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
