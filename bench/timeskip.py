"""Time skipping: the wall time of the 90-day negotiation, on the time-skipping test server.

The scenario of ``tests/workflows/test_outcomes.py::test_a_90_day_negotiation_plays_its_rounds_
and_expires_at_the_deadline``: an automated negotiation makes its opening offer; after 30 days the
counterparty counters, after 30 more it counters again, then it goes silent and the negotiation
expires at its 90-day deadline (and holds its 7-day retrospective window, as by default). The
baseline plays the same shape with the trivial workflow: two signals 30 days apart, each answered
with one activity, and an end at day 90. Both run on one server, alternately, in this process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.baseline import MinimalWorkflow, TrivialInput, TrivialWorkflow, touch
from bench.keys import bench_converter, bench_seal_key_file
from bench.negotiations import STUBBORN_TERMS, Counterparty, new_ids, start
from bench.report import Spread, Target, table
from bench.stage import BenchError
from negotiation.models import CounterpartyAction, Outcome
from starters import client as api
from starters.sample import renewal_request
from workers.devserver import find_executable
from workers.settings import Settings
from workers.worker import build_worker
from workflows.search_attributes import ALL

T = TypeVar("T")
MONTH = timedelta(days=30)
TARGET_SECONDS = 2.0


class TimeSkipOptions(BaseModel):
    """How much to measure."""

    repeats: int = Field(default=5, ge=1, description="Runs of each scenario, alternately.")


class TimeSkipResult(BaseModel):
    """What one time-skipping run measured."""

    options: TimeSkipOptions
    fitnest_seconds: Spread
    baseline_seconds: Spread
    ratio: Spread = Field(
        description="Each negotiation's wall time over the baseline run before it."
    )
    server_start_seconds: float
    seconds: float
    targets: list[Target]


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, with Fitnest's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_executable("temporal-test-server")),
        data_converter=bench_converter(),
    )
    try:
        # The test server knows no custom search attributes until told; unknown ones fail tasks.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: key.indexed_value_type for key in ALL},  # type: ignore[misc]
            )
        )
        yield env
    finally:
        await env.shutdown()


async def _awaited(result: Callable[[], Awaitable[T]], attempts: int = 4) -> T:
    """``result()``, asked again when the test server answers the long poll with no event.

    It does so when its clock is held (an activity still counted as running); waiting on helps.
    """
    for attempt in range(attempts):
        try:
            return await result()
        except RuntimeError as err:
            if "No completion event found" not in str(err) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


async def _negotiation(env: WorkflowEnvironment, task_queue: str) -> float:
    client: Client = env.client
    (negotiation_id,) = new_ids("ninety", 1)
    began = time.perf_counter()
    request = renewal_request(
        "automated", negotiation_id=negotiation_id, now=await env.get_current_time()
    )
    await start(client, task_queue, request)
    player = Counterparty(client, negotiation_id, 0.02, 60)
    await player.until(lambda s: s.our_terms is not None, "the opening offer")
    for version in (3, 5):
        await env.sleep(MONTH)
        await player.send(CounterpartyAction.COUNTER, STUBBORN_TERMS)
        await player.until(
            lambda s, v=version: s.our_terms is not None and s.our_terms.version == v,  # type: ignore[misc]
            f"our offer {version}",
        )
    # Time skips while this waits. (A handle from start_workflow unlocks the clock by itself while
    # its result is awaited; starters.client's handle does not, so it is unlocked here.)
    async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
        result = await _awaited(lambda: api.get_result(client, negotiation_id))
    seconds = time.perf_counter() - began
    if result.outcome != Outcome.EXPIRED:
        raise BenchError(f"{negotiation_id}: expected expired at the deadline, got {result}")
    return seconds


async def _baseline(env: WorkflowEnvironment, task_queue: str) -> float:
    began = time.perf_counter()
    handle = await env.client.start_workflow(
        TrivialWorkflow.run,
        TrivialInput(activity_per_signal=True, deadline_days=90),
        id=f"bench-ninety-trivial-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    for number in (1, 2):
        await env.sleep(MONTH)
        await handle.signal(TrivialWorkflow.poke, number)
        while await handle.query(TrivialWorkflow.seen) < number:
            await asyncio.sleep(0.02)
    await _awaited(handle.result)
    return time.perf_counter() - began


async def measure_timeskip(options: TimeSkipOptions, workdir: Path) -> TimeSkipResult:
    """Start a time-skipping server and both workers here; run both scenarios alternately."""
    began = time.perf_counter()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        outbox_dir=workdir / "outbox",
        ledger_dir=workdir / "ledger",
        seal_key_file=bench_seal_key_file(),
    )
    fitnest_q, baseline_q = (f"bench-{k}-{uuid.uuid4().hex[:8]}" for k in ("fitnest", "baseline"))
    async with time_skipping_server() as env:
        server_start = time.perf_counter() - began
        async with (
            build_worker(env.client, settings, task_queue=fitnest_q),
            Worker(
                env.client,
                task_queue=baseline_q,
                workflows=[MinimalWorkflow, TrivialWorkflow],
                activities=[touch],
            ),
        ):
            # Warm-up, not measured: loading the workflow modules into the sandbox.
            await _baseline(env, baseline_q)
            await _negotiation(env, fitnest_q)
            fitnest, baseline = [], []
            for _ in range(options.repeats):
                baseline.append(await _baseline(env, baseline_q))
                fitnest.append(await _negotiation(env, fitnest_q))
    median = Spread.of(fitnest, 3)
    return TimeSkipResult(
        options=options,
        fitnest_seconds=median,
        baseline_seconds=Spread.of(baseline, 3),
        ratio=Spread.of([f / b for f, b in zip(fitnest, baseline, strict=True)], 2),
        server_start_seconds=round(server_start, 2),
        seconds=round(time.perf_counter() - began, 1),
        targets=[
            Target(
                name="90-day negotiation, wall seconds (max of the runs)",
                value=median.max,
                limit=TARGET_SECONDS,
                note=f"median {median.median:g} s",
            )
        ],
    )


def render_timeskip(result: TimeSkipResult) -> list[str]:
    """The time-skipping run as text."""
    return [
        f"time skipping: {result.options.repeats} runs of each, alternately; the test server "
        f"started in {result.server_start_seconds:g} s",
        *table(
            [
                ("scenario (90 days)", "wall seconds median (min-max)"),
                (
                    "baseline: 2 signal + activity rounds, end at day 90",
                    result.baseline_seconds.text(),
                ),
                ("fitnest: 2 rounds, then expires at the deadline", result.fitnest_seconds.text()),
            ]
        ),
        f"ratio fitnest/baseline: {result.ratio.text('.2f')}",
    ]
