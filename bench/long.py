"""Long: one negotiation of many rounds, and the largest single run's history.

A stubborn counterparty counters every offer of ours with the same terms (inside the walk-away,
never at target) and waits for our answer each time; the strategy counters until the last round
(``max_rounds``), accepts, and the counterparty signs. The baseline plays as many rounds with a
trivial workflow that answers each signal with one activity, driven the same way (signal, then
query until answered). Measured: total time, and every run's events and bytes (the parent and
each run of the development movement, which continues as new to keep its runs small).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from pydantic import BaseModel, Field
from temporalio.client import Client

from bench.baseline import TrivialInput, TrivialWorkflow
from bench.histories import Run, negotiation_runs, run_bytes, runs_of
from bench.negotiations import run_stubborn
from bench.report import Spread, Target, table
from bench.rounds import EventsPerRound
from bench.stage import BenchError, Stage

MAX_RUN_EVENTS = 10_000


class LongOptions(BaseModel):
    """How much to measure."""

    rounds: int = Field(default=500, ge=1, description="Rounds of the negotiation.")
    repeats: int = Field(default=1, ge=1, description="Negotiations played one after another.")
    poll_seconds: float = Field(
        default=0.02, gt=0, description="How often the driver reads the status."
    )


class RunSize(BaseModel):
    """One run of one workflow."""

    workflow: str
    events: int
    bytes: int


class LongResult(BaseModel):
    """What one long run measured."""

    options: LongOptions
    fitnest_seconds: Spread
    baseline_seconds: Spread
    time_ratio: Spread = Field(description="Each negotiation's time over its baseline's.")
    runs: list[RunSize] = Field(description="Every run of the last negotiation, parent first.")
    largest_run: RunSize
    total_events: int
    events_per_round: float = Field(description="All events of the negotiation / rounds.")
    per_round: EventsPerRound
    baseline_events: int
    seconds: float
    targets: list[Target]


async def _baseline_rounds(
    client: Client, task_queue: str, rounds: int, poll: float
) -> tuple[float, int]:
    """The trivial workflow through ``rounds`` signal-activity rounds: seconds and its events."""
    workflow_id = f"bench-rounds-{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    handle = await client.start_workflow(
        TrivialWorkflow.run,
        TrivialInput(activity_per_signal=True),
        id=workflow_id,
        task_queue=task_queue,
    )
    for number in range(1, rounds + 1):
        await handle.signal(TrivialWorkflow.poke, number)
        give_up = time.monotonic() + 60
        while await handle.query(TrivialWorkflow.seen) < number:
            if time.monotonic() > give_up:
                raise BenchError(f"{workflow_id}: round {number} never answered")
            await asyncio.sleep(poll)
    await handle.signal(TrivialWorkflow.finish)
    await handle.result()
    seconds = time.perf_counter() - began
    return seconds, sum(len(run) for run in await runs_of(client, workflow_id))


def _sizes(found: dict[str, list[Run]]) -> list[RunSize]:
    return [
        RunSize(workflow=name, events=len(run), bytes=run_bytes(run))
        for name, runs in found.items()
        for run in reversed(runs)
    ]


async def measure_long(stage: Stage, options: LongOptions) -> LongResult:
    """Play the long negotiation and the baseline's rounds alternately; size every run."""
    client, began, poll = stage.client, time.perf_counter(), options.poll_seconds
    fitnest, baseline = [], []
    for _ in range(options.repeats):
        seconds, baseline_events = await _baseline_rounds(
            client, stage.baseline.task_queue, options.rounds, poll
        )
        baseline.append(seconds)
        seconds, negotiation_id = await run_stubborn(
            client, stage.fitnest.task_queue, options.rounds, poll_seconds=poll, timeout=600
        )
        fitnest.append(seconds)
    found = await negotiation_runs(client, negotiation_id)
    runs = _sizes(found)
    per_round = EventsPerRound.of(
        [(negotiation_id, found["negotiation"], found.get("development", []))], options.rounds
    )
    largest = max(runs, key=lambda r: r.events)
    total = sum(r.events for r in runs)
    return LongResult(
        options=options,
        fitnest_seconds=Spread.of(fitnest, 2),
        baseline_seconds=Spread.of(baseline, 2),
        time_ratio=Spread.of([f / b for f, b in zip(fitnest, baseline, strict=True)], 2),
        runs=runs,
        largest_run=largest,
        total_events=total,
        events_per_round=round(total / options.rounds, 2),
        per_round=per_round,
        baseline_events=baseline_events,
        seconds=round(time.perf_counter() - began, 1),
        targets=[
            Target(
                name=f"largest run of a {options.rounds}-round negotiation (events)",
                value=largest.events,
                limit=MAX_RUN_EVENTS,
                note=f"{largest.workflow}, {largest.bytes / 1024:.0f} KiB",
            )
        ],
    )


def render_long(result: LongResult) -> list[str]:
    """The long run as text."""
    o = result.options
    dev = [r for r in result.runs if r.workflow == "development"]
    return [
        f"long: {o.rounds} rounds, {o.repeats} negotiation(s), each after the baseline's rounds",
        *table(
            [
                ("workload", "seconds median (min-max)", "events", "largest run"),
                (
                    f"baseline: {o.rounds} signal + activity rounds",
                    result.baseline_seconds.text(".1f"),
                    f"{result.baseline_events}",
                    f"{result.baseline_events}",
                ),
                (
                    f"fitnest: {o.rounds}-round negotiation",
                    result.fitnest_seconds.text(".1f"),
                    f"{result.total_events}",
                    f"{result.largest_run.events} ({result.largest_run.workflow}, "
                    f"{result.largest_run.bytes / 1024:.0f} KiB)",
                ),
            ]
        ),
        f"time ratio fitnest/baseline: {result.time_ratio.text('.2f')}; "
        f"{result.events_per_round:g} events per round in all",
        f"development runs (events): {', '.join(str(r.events) for r in dev)}",
        f"per development round: {result.per_round.total:g} events (development "
        f"{result.per_round.development:g}, parent {result.per_round.parent:g})",
        *result.per_round.render(),
    ]
