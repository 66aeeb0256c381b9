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
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field, model_validator
from temporalio.client import Client

from bench.baseline import MinimalWorkflow
from bench.negotiations import Counterparty, new_ids, start
from bench.report import Percentiles, Spread, Target, table
from bench.stage import BenchError, Stage, WorkerProcess
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
    """A worker's resident memory, MiB: idle, with half the runs parked, with all parked."""

    idle: float
    half: float
    parked: float
    per_parked_kib: float = Field(
        description="(parked - half) / (N - N/2), KiB: what one more parked run costs."
    )

    @classmethod
    def of(cls, idle: float, half: float, parked: float, n: int) -> Memory:
        """The memory from the three readings, ``n`` parked in all."""
        slope = (parked - half) * 1024 / (n - n // 2)
        return cls(idle=idle, half=half, parked=parked, per_parked_kib=round(slope, 1))

    def projected(self, parked: int, target: int) -> float:
        """The RSS with ``target`` parked, growing from ``parked`` at :attr:`per_parked_kib`."""
        return round(self.parked + self.per_parked_kib * max(0, target - parked) / 1024, 1)


class ScaleResult(BaseModel):
    """What one scale run measured."""

    options: ScaleOptions
    fitnest_memory: Memory
    baseline_memory: Memory
    memory_ratio: float = Field(description="Fitnest's parked RSS over the baseline's.")
    projected_fitnest_mb: float = Field(
        description=f"Fitnest's RSS at {TARGET_PARKED} parked, growing from N at per_parked_kib."
    )
    evicted_status: Percentiles
    evicted_baseline_query: Percentiles
    p99_ratio: float
    pass_p99_ms: Spread = Field(description="Fitnest's evicted-status p99 of each pass alone.")
    park_seconds: float
    seconds: float
    targets: list[Target]


async def _gathered(ids: list[str], one: Callable[[str], Awaitable[None]], at_once: int) -> None:
    gate = asyncio.Semaphore(at_once)

    async def gated(workflow_id: str) -> None:
        async with gate:
            await one(workflow_id)

    await asyncio.gather(*(gated(wid) for wid in ids))


def _negotiation_parker(client: Client, task_queue: str) -> Callable[[str], Awaitable[None]]:
    async def park(negotiation_id: str) -> None:
        request = renewal_request("automated", negotiation_id=negotiation_id)
        await start(client, task_queue, request)
        player = Counterparty(client, negotiation_id, 0.2, 300)
        await player.until(lambda s: s.our_terms is not None, "the opening offer")

    return park


def _minimal_parker(client: Client, task_queue: str) -> Callable[[str], Awaitable[None]]:
    async def park(workflow_id: str) -> None:
        handle = await client.start_workflow(
            MinimalWorkflow.run, workflow_id, id=workflow_id, task_queue=task_queue
        )
        give_up = time.monotonic() + 300
        while not await handle.query(MinimalWorkflow.parked):
            if time.monotonic() > give_up:
                raise BenchError(f"{workflow_id} never parked")
            await asyncio.sleep(0.2)

    return park


async def _settled_rss(worker: WorkerProcess) -> float:
    """The RSS once the worker has caught up: the largest of a few readings a second apart."""
    readings = []
    for _ in range(3):
        await asyncio.sleep(1)
        readings.append(worker.rss_mb())
    return round(max(readings), 1)


async def _query_pass(ids: list[str], query: Callable[[str], Awaitable[object]]) -> list[float]:
    millis = []
    for workflow_id in ids:
        began = time.perf_counter()
        await query(workflow_id)
        millis.append((time.perf_counter() - began) * 1000)
    return millis


async def measure_scale(stage: Stage, options: ScaleOptions) -> ScaleResult:
    """Park N of each (reading the workers' memory at 0, N/2 and N), then query evicted runs."""
    client, began = stage.client, time.perf_counter()
    n, half = options.parked, options.parked // 2
    negotiations = new_ids("parked", n)
    minimal = [f"bench-parked-minimal-{uuid.uuid4().hex[:8]}-{i:05d}" for i in range(n)]
    park_negotiation = _negotiation_parker(client, stage.fitnest.task_queue)
    park_minimal = _minimal_parker(client, stage.baseline.task_queue)
    readings: tuple[list[float], list[float]] = ([], [])
    for part in (slice(0, 0), slice(0, half), slice(half, n)):
        await _gathered(negotiations[part], park_negotiation, options.concurrency)
        await _gathered(minimal[part], park_minimal, options.concurrency)
        readings[0].append(await _settled_rss(stage.fitnest))
        readings[1].append(await _settled_rss(stage.baseline))
    park_seconds = time.perf_counter() - began
    fitnest_mem, baseline_mem = (Memory.of(r[0], r[1], r[2], n) for r in readings)

    async def status(negotiation_id: str) -> object:
        return await api.get_status(client, negotiation_id)

    async def parked(workflow_id: str) -> object:
        return await client.get_workflow_handle(workflow_id).query(MinimalWorkflow.parked)

    fitnest_ms: list[list[float]] = []
    baseline_ms: list[list[float]] = []
    for k in range(options.repeats):
        # Successive passes query successive slices (in the order parked), so each query finds
        # a run that more than `cache` other runs have been touched since.
        chosen = [(k * options.queries + i) % n for i in range(options.queries)]
        fitnest_ms.append(await _query_pass([negotiations[i] for i in chosen], status))
        baseline_ms.append(await _query_pass([minimal[i] for i in chosen], parked))

    for workflow_id in minimal:
        await client.get_workflow_handle(workflow_id).signal(MinimalWorkflow.release)
    for negotiation_id in negotiations:
        await client.get_workflow_handle(negotiation_id).terminate("scale measured")

    evicted = Percentiles.of([m for p in fitnest_ms for m in p])
    baseline_q = Percentiles.of([m for p in baseline_ms for m in p])
    projected = fitnest_mem.projected(n, TARGET_PARKED)
    note = (
        f"measured at {n}"
        if n >= TARGET_PARKED
        else f"measured {fitnest_mem.parked:g} MiB at {n}, then "
        f"{fitnest_mem.per_parked_kib:g} KiB per more parked"
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
        f"scale: {o.parked} parked of each, workers' cache {o.cache} runs; parking both took "
        f"{result.park_seconds:g} s; {o.repeats} passes of {o.queries} queries",
        *table(
            [
                (
                    "worker",
                    "RSS MiB idle / N/2 / N parked",
                    "KiB per more parked",
                    "evicted query p50 / p95 / p99 ms",
                ),
                (
                    "fitnest (negotiation + opening open)",
                    f"{f.idle:g} / {f.half:g} / {f.parked:g}",
                    f"{f.per_parked_kib:g}",
                    f"{e.p50:.1f} / {e.p95:.1f} / {e.p99:.1f}",
                ),
                (
                    "baseline (minimal workflow)",
                    f"{b.idle:g} / {b.half:g} / {b.parked:g}",
                    f"{b.per_parked_kib:g}",
                    f"{q.p50:.1f} / {q.p95:.1f} / {q.p99:.1f}",
                ),
            ]
        ),
        f"ratios fitnest/baseline: RSS {result.memory_ratio:g}, evicted query p99 "
        f"{result.p99_ratio:g} (fitnest p99 per pass {result.pass_p99_ms.text('.1f')} ms); "
        f"projected RSS at {TARGET_PARKED} parked: {result.projected_fitnest_mb:g} MiB",
    ]
