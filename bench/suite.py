"""The suite: run some benchmarks on one server and gather their results into one report."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

from bench.latency import LatencyOptions, LatencyResult, measure_latency, render_latency
from bench.long import LongOptions, LongResult, measure_long, render_long
from bench.report import Machine, Target, machine
from bench.scale import ScaleOptions, ScaleResult, measure_scale, render_scale
from bench.stage import (
    Stage,
    describe_server,
    dev_server,
    stdout_to_stderr,
    temporal_binary,
    workers,
)
from bench.throughput import (
    ThroughputOptions,
    ThroughputResult,
    measure_throughput,
    render_throughput,
)
from bench.timeskip import TimeSkipOptions, TimeSkipResult, measure_timeskip, render_timeskip

BENCHMARKS = ("throughput", "latency", "scale", "long", "timeskip")


class SuiteOptions(BaseModel):
    """Which benchmarks, how big, on which server."""

    run: list[str] = Field(default_factory=lambda: list(BENCHMARKS))
    db_file: Path | None = Field(default=None, description="SQLite file for the dev server.")
    throughput: ThroughputOptions = Field(default_factory=ThroughputOptions)
    latency: LatencyOptions = Field(default_factory=LatencyOptions)
    scale: ScaleOptions = Field(default_factory=ScaleOptions)
    long: LongOptions = Field(default_factory=LongOptions)
    timeskip: TimeSkipOptions = Field(default_factory=TimeSkipOptions)


class SuiteReport(BaseModel):
    """Everything one ``python -m bench`` run measured."""

    machine: Machine
    throughput: ThroughputResult | None = None
    latency: LatencyResult | None = None
    scale: ScaleResult | None = None
    long: LongResult | None = None
    timeskip: TimeSkipResult | None = None
    total_seconds: float

    def targets(self) -> list[Target]:
        """Every target checked in this run."""
        results = (self.throughput, self.latency, self.scale, self.long, self.timeskip)
        return [t for r in results if r is not None for t in r.targets]


async def run_suite(options: SuiteOptions) -> SuiteReport:
    """Run the chosen benchmarks: the dev-server ones on one fresh server, then time skipping."""
    began = time.perf_counter()
    found: dict[str, object] = {}
    with stdout_to_stderr(), tempfile.TemporaryDirectory(prefix="fitnest-bench-") as tmp:
        workdir = Path(tmp)
        served = [name for name in options.run if name != "timeskip"]
        if served:
            async with dev_server(options.db_file) as env:
                for name in served:
                    # Each benchmark gets fresh workers: the scale run bounds their cache, and
                    # one benchmark's leftovers must not load the next one's worker.
                    cache = options.scale.cache if name == "scale" else 1000
                    _progress(name)
                    async with workers(env.client, workdir, max_cached_workflows=cache) as stage:
                        found[name] = await _measure(name, stage, options)
        if "timeskip" in options.run:
            _progress("timeskip")
            found["timeskip"] = await measure_timeskip(options.timeskip, workdir)
    return SuiteReport(
        machine=machine(temporal_binary(), describe_server(options.db_file)),
        total_seconds=round(time.perf_counter() - began, 1),
        **found,  # type: ignore[arg-type]
    )


def _progress(name: str) -> None:
    print(f"bench: {name} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)


async def _measure(name: str, stage: Stage, options: SuiteOptions) -> object:
    if name == "throughput":
        return await measure_throughput(stage, options.throughput)
    if name == "latency":
        return await measure_latency(stage, options.latency)
    if name == "scale":
        return await measure_scale(stage, options.scale)
    if name == "long":
        return await measure_long(stage, options.long)
    raise ValueError(f"unknown benchmark {name}")


def render(report: SuiteReport) -> str:
    """The report as text for people: the machine, each benchmark's table, the targets."""
    m = report.machine
    lines = [
        f"machine: {m.usable_cores} usable cores (of {m.cpu_count}), load average "
        f"{m.load_average[0]:g} / {m.load_average[1]:g} / {m.load_average[2]:g} at the end, "
        f"{m.platform}",
        f"versions: Python {m.python}, temporalio {m.temporalio}, temporal {m.temporal_cli}, "
        f"fitnest {m.fitnest}",
        f"server: {m.server}; measured {m.measured_at:%Y-%m-%d %H:%M} UTC",
    ]
    if report.throughput is not None:
        lines += ["", *render_throughput(report.throughput)]
    if report.latency is not None:
        lines += ["", *render_latency(report.latency)]
    if report.scale is not None:
        lines += ["", *render_scale(report.scale)]
    if report.long is not None:
        lines += ["", *render_long(report.long)]
    if report.timeskip is not None:
        lines += ["", *render_timeskip(report.timeskip)]
    lines += ["", "targets (issue 7):", *(f"  {t.line()}" for t in report.targets())]
    lines.append(f"whole run {report.total_seconds:.0f} s")
    return "\n".join(lines)
