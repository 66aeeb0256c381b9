"""What the bench reports: throughput samples, history events, the machine; as JSON or a table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, Field


class Options(BaseModel):
    """How much to measure."""

    negotiations: int = Field(default=30, ge=1, description="Concurrent runs of each workload.")
    rounds: int = Field(default=50, ge=1, description="Rounds of the long negotiation.")
    repeats: int = Field(
        default=3,
        ge=1,
        description="Fitnest samples; the baseline is sampled before and after each.",
    )
    poll_seconds: float = Field(
        default=0.1, gt=0, description="How often the simulated counterparty reads the status."
    )


class Sample(BaseModel):
    """One timed batch of concurrent runs, from the first start to the last end."""

    runs: int
    seconds: float
    per_second: float

    @classmethod
    def of(cls, runs: int, seconds: float) -> Sample:
        """The sample of ``runs`` that took ``seconds``."""
        return cls(runs=runs, seconds=round(seconds, 3), per_second=round(runs / seconds, 2))


class EventCount(BaseModel):
    """History events per run (a negotiation: its own history plus its movements')."""

    mean: float
    min: int
    max: int
    by_workflow: dict[str, float] = Field(
        default_factory=dict, description="Mean events of each workflow of a run."
    )

    @classmethod
    def of(cls, runs: Sequence[Mapping[str, int]]) -> EventCount:
        """Summarise the per-workflow event counts of several runs."""
        totals = [sum(run.values()) for run in runs]
        names = sorted({name for run in runs for name in run})
        return cls(
            mean=round(statistics.fmean(totals), 1),
            min=min(totals),
            max=max(totals),
            by_workflow={
                name: round(statistics.fmean(run.get(name, 0) for run in runs), 1) for name in names
            },
        )


class Throughput(BaseModel):
    """One workload: its samples, their median, and what it costs the server in events."""

    workload: str
    concurrency: int
    samples: list[Sample]
    per_second: float = Field(description="Median runs per second over the samples.")
    events: EventCount
    events_per_second: float = Field(description="per_second x mean events per run.")

    @classmethod
    def of(cls, workload: str, samples: list[Sample], events: EventCount) -> Throughput:
        """The workload's figures from its samples and its event counts."""
        median = statistics.median(s.per_second for s in samples)
        return cls(
            workload=workload,
            concurrency=samples[0].runs,
            samples=samples,
            per_second=round(median, 2),
            events=events,
            events_per_second=round(median * events.mean, 1),
        )


class LongNegotiation(BaseModel):
    """One automated negotiation of many rounds against a stubborn counterparty."""

    rounds: int
    seconds: float
    parent_events: int
    development_events: int
    development_runs: int = Field(description="Runs of the development movement (continue-as-new).")
    parent_events_per_round: float = Field(
        description="Parent events beyond an accepted-opening negotiation's parent, per round."
    )
    development_events_per_round: float


class Machine(BaseModel):
    """Where and with what the numbers were measured."""

    cpu_count: int | None
    usable_cores: int
    platform: str
    python: str
    temporalio: str
    temporal_cli: str
    fitnest: str
    server: str = "temporal server start-dev, in memory"


class Report(BaseModel):
    """Everything ``python -m bench`` measured in one run."""

    machine: Machine
    options: Options
    baseline: Throughput
    fitnest: Throughput
    ratio: float = Field(
        description="Median of sample_ratios: Fitnest runs/s over baseline runs/s."
    )
    sample_ratios: list[float] = Field(
        description="Each Fitnest sample over the mean of the baseline samples just before and after."
    )
    events_ratio: float = Field(description="fitnest events / baseline events, per run.")
    status_queries: int = Field(description="Status queries the simulated counterparty made.")
    long: LongNegotiation
    total_seconds: float


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(temporal: Path) -> Machine:
    """The machine, and the versions of Python, the SDK, the server binary and Fitnest."""
    try:
        cli = subprocess.run(
            [str(temporal), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        cli = f"unknown ({type(err).__name__})"
    return Machine(
        cpu_count=os.cpu_count(),
        usable_cores=len(os.sched_getaffinity(0)),
        platform=platform.platform(),
        python=platform.python_version(),
        temporalio=_version("temporalio"),
        temporal_cli=cli.removeprefix("temporal version "),
        fitnest=_version("fitnest"),
    )


def render(report: Report) -> str:
    """The report as a small table for people."""
    m, b, f, long = report.machine, report.baseline, report.fitnest, report.long
    rows = [
        ("workload", "runs/s", "events/run", "events/s", "samples (runs/s)"),
        *(
            (
                t.workload,
                f"{t.per_second:.2f}",
                f"{t.events.mean:.1f}",
                f"{t.events_per_second:.0f}",
                ", ".join(f"{s.per_second:.2f}" for s in t.samples),
            )
            for t in (b, f)
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    parts = ", ".join(f"{name} {n:g}" for name, n in f.events.by_workflow.items())
    return "\n".join(
        [
            f"machine: {m.usable_cores} usable cores (of {m.cpu_count}), {m.platform}",
            f"versions: Python {m.python}, temporalio {m.temporalio}, "
            f"temporal {m.temporal_cli}, fitnest {m.fitnest}",
            f"server: {m.server}; {report.options.negotiations} concurrent runs per sample, "
            f"{report.options.repeats} Fitnest samples, each between two baseline samples",
            "",
            *table,
            "",
            f"ratio fitnest/baseline: {report.ratio:.3f} runs/s (median of "
            f"{', '.join(f'{r:.3f}' for r in report.sample_ratios)}); "
            f"a negotiation needs {report.events_ratio:.1f}x the baseline's history events",
            f"events per negotiation: {f.events.mean:g} (min {f.events.min}, max {f.events.max}): {parts}",
            f"long negotiation, {long.rounds} rounds in {long.seconds:.1f} s: "
            f"parent {long.parent_events} events ({long.parent_events_per_round:.1f}/round beyond "
            f"an accepted opening), development {long.development_events} events in "
            f"{long.development_runs} run(s) ({long.development_events_per_round:.1f}/round)",
            f"driver: {report.status_queries} status queries; whole run {report.total_seconds:.0f} s",
        ]
    )
