"""Throughput: three-round automated negotiations per second against a minimal workflow's.

The samples run B F B F ... B (B: a batch of minimal workflows, F: a batch of negotiations, each
batch started at once). Each F is read against the mean of the B just before and after it, which
cancels drift and the load of other processes better than comparing two medians. Then the last
batch's histories are counted: events and workflow tasks per negotiation, and per development
round (the development movement's events plus the parent's while it played), by event type.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from pathlib import Path

from pydantic import BaseModel, Field, computed_field
from temporalio.client import Client

from bench.baseline import MinimalWorkflow
from bench.histories import Tally, negotiation_runs, runs_of
from bench.negotiations import SIMULATED_ROUNDS, run_simulated
from bench.profile import ProfileSummary, py_spy, render_profile, summarise
from bench.report import Spread, Target, table
from bench.rounds import EventsPerRound
from bench.stage import Stage


class ThroughputOptions(BaseModel):
    """How much to measure."""

    concurrency: int = Field(default=20, ge=1, description="Runs started at once per batch.")
    repeats: int = Field(
        default=3, ge=1, description="Negotiation batches, each between two baseline batches."
    )
    poll_seconds: float = Field(
        default=0.1, gt=0, description="How often the simulated counterparty reads the status."
    )
    profile: Path | None = Field(
        default=None, description="Record the Fitnest worker with py-spy; stacks to this file."
    )


class ThroughputResult(BaseModel):
    """What one throughput run measured."""

    options: ThroughputOptions
    baseline_per_second: Spread
    fitnest_per_second: Spread
    ratio: Spread = Field(description="Each negotiation batch over its two neighbouring baselines.")
    baseline_events: float = Field(description="Events of one minimal workflow.")
    events_per_negotiation: float
    events_by_workflow: dict[str, float]
    workflow_tasks_per_negotiation: float
    workflow_tasks_by_workflow: dict[str, float]
    rounds: int
    per_round: EventsPerRound
    profile: ProfileSummary | None = None
    seconds: float
    targets: list[Target]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def events_per_second(self) -> dict[str, float]:
        """History events the server wrote per second for each workload (median rate x events)."""
        return {
            "baseline": round(self.baseline_per_second.median * self.baseline_events, 1),
            "fitnest": round(self.fitnest_per_second.median * self.events_per_negotiation, 1),
        }

    @computed_field  # type: ignore[prop-decorator]
    @property
    def event_ratio(self) -> float:
        """Baseline events over a negotiation's: the throughput ratio when the server's events
        per second bound both workloads (compare it with ``ratio``)."""
        return round(self.baseline_events / self.events_per_negotiation, 4)


async def _minimal_batch(client: Client, task_queue: str, count: int) -> tuple[float, list[str]]:
    tag = uuid.uuid4().hex[:8]
    ids = [f"bench-minimal-{tag}-{i:04d}" for i in range(count)]

    async def one(workflow_id: str) -> None:
        handle = await client.start_workflow(
            MinimalWorkflow.run, workflow_id, id=workflow_id, task_queue=task_queue
        )
        await handle.signal(MinimalWorkflow.release)
        await handle.result()

    began = time.perf_counter()
    await asyncio.gather(*(one(wid) for wid in ids))
    return time.perf_counter() - began, ids


async def _count(client: Client, ids: list[str]) -> dict[str, object]:
    """Events and workflow tasks of the negotiations ``ids``, per negotiation and per round."""
    per_workflow: dict[str, list[Tally]] = {}
    played = []
    for nid in ids:
        found = await negotiation_runs(client, nid)
        for name, runs in found.items():
            tally = Tally()
            for run in runs:
                tally.add(run)
            per_workflow.setdefault(name, []).append(tally)
        played.append((nid, found["negotiation"], found.get("development", [])))
    n = len(ids)
    events = {k: round(sum(t.events for t in v) / n, 1) for k, v in per_workflow.items()}
    tasks = {k: round(sum(t.workflow_tasks for t in v) / n, 1) for k, v in per_workflow.items()}
    return {
        "events_per_negotiation": round(sum(events.values()), 1),
        "events_by_workflow": events,
        "workflow_tasks_per_negotiation": round(sum(tasks.values()), 1),
        "workflow_tasks_by_workflow": tasks,
        "per_round": EventsPerRound.of(played, SIMULATED_ROUNDS),
    }


async def measure_throughput(stage: Stage, options: ThroughputOptions) -> ThroughputResult:
    """Sample both workloads alternately, then count the last negotiation batch's histories."""
    client, began = stage.client, time.perf_counter()
    baseline_q, fitnest_q = stage.baseline.task_queue, stage.fitnest.task_queue
    poll, n = options.poll_seconds, options.concurrency
    # Warm-up, not measured: the first run of each workflow type loads its modules into the
    # sandbox, which would otherwise count against whichever workload ran first.
    await _minimal_batch(client, baseline_q, 2)
    await run_simulated(client, fitnest_q, 1, poll_seconds=poll)

    recording: contextlib.AbstractAsyncContextManager[list[float]] = (
        py_spy(stage.fitnest.pid, options.profile)
        if options.profile
        else contextlib.nullcontext([])
    )
    async with recording as recorded:
        seconds, minimal_ids = await _minimal_batch(client, baseline_q, n)
        baseline, fitnest, ratios = [n / seconds], [], []
        for _ in range(options.repeats):
            seconds, negotiation_ids = await run_simulated(client, fitnest_q, n, poll_seconds=poll)
            fitnest.append(n / seconds)
            seconds, minimal_ids = await _minimal_batch(client, baseline_q, n)
            baseline.append(n / seconds)
            ratios.append(fitnest[-1] / statistics.fmean(baseline[-2:]))

    counted = await _count(client, negotiation_ids)
    minimal_events = [len((await runs_of(client, wid))[0]) for wid in minimal_ids]
    ratio = Spread.of(ratios)
    per_round = counted["per_round"]
    assert isinstance(per_round, EventsPerRound)
    return ThroughputResult(
        options=options,
        baseline_per_second=Spread.of(baseline, 2),
        fitnest_per_second=Spread.of(fitnest, 2),
        ratio=ratio,
        baseline_events=statistics.fmean(minimal_events),
        rounds=SIMULATED_ROUNDS,
        profile=summarise(options.profile, recorded[0]) if options.profile and recorded else None,
        seconds=round(time.perf_counter() - began, 1),
        targets=[
            Target(
                name="throughput, negotiations/s over minimal workflows/s",
                value=ratio.median,
                limit=round(1 / 12, 4),
                at_most=False,
            ),
            Target(
                name="history events per development round",
                value=per_round.total,
                limit=15,
                note=f"development {per_round.development:g} + parent {per_round.parent:g}",
            ),
        ],
        **counted,  # type: ignore[arg-type]
    )


def render_throughput(result: ThroughputResult) -> list[str]:
    """The throughput run as text."""
    o, r = result.options, result.per_round
    lines = [
        f"throughput: {o.concurrency} at once per batch, {o.repeats} negotiation batches, "
        f"each between two baseline batches",
        *table(
            [
                ("workload", "runs/s median (min-max)", "events/run", "workflow tasks/run"),
                (
                    "baseline: 1 activity + 1 signal",
                    result.baseline_per_second.text(".2f"),
                    f"{result.baseline_events:g}",
                    "",
                ),
                (
                    f"fitnest: automated, {result.rounds} rounds",
                    result.fitnest_per_second.text(".2f"),
                    f"{result.events_per_negotiation:g}",
                    f"{result.workflow_tasks_per_negotiation:g}",
                ),
            ]
        ),
        f"ratio fitnest/baseline: {result.ratio.text()}",
        f"server events/s: baseline {result.events_per_second['baseline']:g}, fitnest "
        f"{result.events_per_second['fitnest']:g}; events per run, baseline over fitnest: "
        f"{result.event_ratio:g} (the ratio above, if the server's events/s bound both)",
        "events by workflow: "
        + ", ".join(f"{k} {v:g}" for k, v in result.events_by_workflow.items()),
        "workflow tasks by workflow: "
        + ", ".join(f"{k} {v:g}" for k, v in result.workflow_tasks_by_workflow.items()),
        f"per development round: {r.total:g} events (development {r.development:g}, "
        f"parent {r.parent:g})",
    ]
    profile = render_profile(result.profile) if result.profile else []
    return [*lines, *r.render(), *profile]
