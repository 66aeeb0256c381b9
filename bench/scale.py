"""Scale: many negotiations parked waiting for the counterparty, on a worker with a bounded cache.

N automated negotiations are started and each waits for the counterparty's first answer to our
opening offer (the negotiation and its opening movement stay open). Beside them, N minimal
workflows wait for their signal on the baseline worker, with the same cache bound. Measured:

- each worker's resident memory (VmRSS of its process) before and after parking;
- the ``status`` query of a negotiation evicted from the cache, against the query of an evicted
  minimal workflow. The queries walk the parked runs in the order they were last touched; with
  more parked runs than the cache holds, each query finds its run evicted and replays it.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from pydantic import BaseModel, Field, model_validator
from temporalio.client import Client

from bench.baseline import MinimalWorkflow
from bench.negotiations import Counterparty, new_ids, start
from bench.report import Percentiles, Spread, Target, table
from bench.stage import BenchError, Stage
from starters import client as api
from starters.sample import renewal_request

TARGET_PARKED = 10_000


class ScaleOptions(BaseModel):
    """How much to measure."""

    parked: int = Field(
        default=300, ge=1, description="Negotiations parked (and minimal workflows)."
    )
    cache: int = Field(default=100, ge=1, description="The workers' max_cached_workflows.")
    repeats: int = Field(default=3, ge=1, description="Passes of evicted-status queries.")
    queries: int = Field(default=50, ge=1, description="Evicted-status queries per pass.")
    concurrency: int = Field(default=20, ge=1, description="Negotiations being parked at once.")

    @model_validator(mode="after")
    def _evicts(self) -> ScaleOptions:
        if self.parked <= self.cache:
            raise ValueError(f"parked ({self.parked}) must exceed cache ({self.cache}) to evict")
        return self


class Memory(BaseModel):
    """A worker's resident memory, MiB."""

    idle: float
    parked: float
    per_parked_kib: float = Field(description="(parked - idle) / N, KiB.")


class ScaleResult(BaseModel):
    """What one scale run measured."""

    options: ScaleOptions
    fitnest_memory: Memory
    baseline_memory: Memory
    memory_ratio: float = Field(description="Fitnest's parked RSS over the baseline's.")
    projected_fitnest_mb: float = Field(
        description=f"Fitnest's RSS at {TARGET_PARKED} parked if it grew linearly from N."
    )
    evicted_status: Percentiles
    evicted_baseline_query: Percentiles
    p99_ratio: float
    pass_p99_ms: Spread = Field(description="Fitnest's evicted-status p99 of each pass alone.")
    park_seconds: float
    seconds: float
    targets: list[Target]


async def _park_negotiations(client: Client, task_queue: str, options: ScaleOptions) -> list[str]:
    ids = new_ids("parked", options.parked)
    gate = asyncio.Semaphore(options.concurrency)

    async def park(negotiation_id: str) -> None:
        async with gate:
            await start(
                client, task_queue, renewal_request("automated", negotiation_id=negotiation_id)
            )
            player = Counterparty(client, negotiation_id, 0.2, 300)
            await player.until(lambda s: s.our_terms is not None, "the opening offer")

    await asyncio.gather(*(park(nid) for nid in ids))
    return ids


async def _park_minimal(client: Client, task_queue: str, options: ScaleOptions) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    ids = [f"bench-parked-minimal-{tag}-{i:05d}" for i in range(options.parked)]
    gate = asyncio.Semaphore(options.concurrency)

    async def park(workflow_id: str) -> None:
        async with gate:
            handle = await client.start_workflow(
                MinimalWorkflow.run, workflow_id, id=workflow_id, task_queue=task_queue
            )
            give_up = time.monotonic() + 300
            while not await handle.query(MinimalWorkflow.parked):
                if time.monotonic() > give_up:
                    raise BenchError(f"{workflow_id} never parked")
                await asyncio.sleep(0.2)

    await asyncio.gather(*(park(wid) for wid in ids))
    return ids


async def _settled_rss(worker_rss: object) -> float:
    """The RSS once the worker has caught up: the largest of a few readings a second apart."""
    assert callable(worker_rss)
    readings = []
    for _ in range(3):
        await asyncio.sleep(1)
        readings.append(worker_rss())
    return round(max(readings), 1)


def _memory(idle: float, parked: float, n: int) -> Memory:
    return Memory(idle=idle, parked=parked, per_parked_kib=round((parked - idle) * 1024 / n, 1))


async def _query_pass(ids: list[str], query: object) -> list[float]:
    assert callable(query)
    millis = []
    for workflow_id in ids:
        began = time.perf_counter()
        await query(workflow_id)
        millis.append((time.perf_counter() - began) * 1000)
    return millis


async def measure_scale(stage: Stage, options: ScaleOptions) -> ScaleResult:
    """Park N of each, read the workers' memory, then query evicted runs."""
    client, began = stage.client, time.perf_counter()
    idle_f, idle_b = (
        await _settled_rss(stage.fitnest.rss_mb),
        await _settled_rss(stage.baseline.rss_mb),
    )
    negotiations = await _park_negotiations(client, stage.fitnest.task_queue, options)
    park_seconds = time.perf_counter() - began
    minimal = await _park_minimal(client, stage.baseline.task_queue, options)
    fitnest_mem = _memory(idle_f, await _settled_rss(stage.fitnest.rss_mb), options.parked)
    baseline_mem = _memory(idle_b, await _settled_rss(stage.baseline.rss_mb), options.parked)

    async def status(nid: str) -> object:
        return await api.get_status(client, nid)

    async def parked(wid: str) -> object:
        return await client.get_workflow_handle(wid).query(MinimalWorkflow.parked)

    fitnest_ms: list[list[float]] = []
    baseline_ms: list[list[float]] = []
    for k in range(options.repeats):
        # Successive passes query successive slices (in the order parked), so each query finds
        # a run that more than `cache` other runs have been touched since.
        chosen = [(k * options.queries + i) % options.parked for i in range(options.queries)]
        fitnest_ms.append(await _query_pass([negotiations[i] for i in chosen], status))
        baseline_ms.append(await _query_pass([minimal[i] for i in chosen], parked))

    for wid in minimal:
        await client.get_workflow_handle(wid).signal(MinimalWorkflow.release)
    for nid in negotiations:
        await client.get_workflow_handle(nid).terminate("scale measured")

    evicted = Percentiles.of([m for p in fitnest_ms for m in p])
    baseline_q = Percentiles.of([m for p in baseline_ms for m in p])
    per_kib = fitnest_mem.per_parked_kib
    projected = (
        fitnest_mem.parked
        if options.parked >= TARGET_PARKED
        else round(fitnest_mem.idle + per_kib * TARGET_PARKED / 1024, 1)
    )
    note = (
        f"measured at {options.parked}"
        if options.parked >= TARGET_PARKED
        else f"projected linearly from {options.parked} parked; measured {fitnest_mem.parked:g} MiB"
    )
    return ScaleResult(
        options=options,
        fitnest_memory=fitnest_mem,
        baseline_memory=baseline_mem,
        memory_ratio=round(fitnest_mem.parked / baseline_mem.parked, 2),
        projected_fitnest_mb=projected,
        evicted_status=evicted,
        evicted_baseline_query=baseline_q,
        p99_ratio=round(evicted.p99 / baseline_q.p99, 2),
        pass_p99_ms=Spread.of([Percentiles.of(p).p99 for p in fitnest_ms], 1),
        park_seconds=round(park_seconds, 1),
        seconds=round(time.perf_counter() - began, 1),
        targets=[
            Target(
                name=f"worker RSS (MiB) with {TARGET_PARKED} parked, cache {options.cache}",
                value=projected,
                limit=1024,
                note=note,
            ),
            Target(
                name="evicted negotiation's status p99 (ms)",
                value=evicted.p99,
                limit=200,
                note=f"{evicted.p99 / baseline_q.p99:.2f}x an evicted minimal workflow's query",
            ),
        ],
    )


def render_scale(result: ScaleResult) -> list[str]:
    """The scale run as text."""
    o, f, b = result.options, result.fitnest_memory, result.baseline_memory
    e, q = result.evicted_status, result.evicted_baseline_query
    return [
        f"scale: {o.parked} parked of each, workers' cache {o.cache} runs; parking the "
        f"negotiations took {result.park_seconds:g} s; {o.repeats} passes of {o.queries} queries",
        *table(
            [
                (
                    "worker",
                    "RSS idle MiB",
                    "RSS parked MiB",
                    "KiB per parked",
                    "evicted query p50/p95/p99 ms",
                ),
                (
                    "fitnest (negotiation + opening open)",
                    f"{f.idle:g}",
                    f"{f.parked:g}",
                    f"{f.per_parked_kib:g}",
                    f"{e.p50:.1f} / {e.p95:.1f} / {e.p99:.1f}",
                ),
                (
                    "baseline (minimal workflow)",
                    f"{b.idle:g}",
                    f"{b.parked:g}",
                    f"{b.per_parked_kib:g}",
                    f"{q.p50:.1f} / {q.p95:.1f} / {q.p99:.1f}",
                ),
            ]
        ),
        f"ratios fitnest/baseline: RSS {result.memory_ratio:g}, evicted query p99 "
        f"{result.p99_ratio:g} (fitnest p99 per pass {result.pass_p99_ms.text('.1f')} ms)",
    ]
