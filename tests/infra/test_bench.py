"""``python -m bench`` measures at a tiny size and reports consistent counts.

Smoke tests only: no timing is asserted anywhere (performance is read from the bench's ratios,
never from a test's clock).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.__main__ import parse
from bench.measure import measure
from bench.report import Options, Report, render
from bench.stage import temporal_binary, workers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MOVEMENTS_PLAYED = {"negotiation", "preparation", "opening", "closure"}


async def test_bench_measures_both_workloads_and_reports_consistent_counts(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    options = Options(negotiations=2, rounds=3, repeats=1)
    async with workers(dev_env.client, tmp_path) as queues:
        report = await measure(dev_env.client, queues, options, temporal_binary())

    # Every Fitnest sample lies between two baseline samples.
    assert [s.runs for s in report.baseline.samples] == [2, 2]
    assert [s.runs for s in report.fitnest.samples] == [2]
    for workload in (report.baseline, report.fitnest):
        assert workload.concurrency == 2
        assert workload.per_second > 0 and math.isfinite(workload.per_second)
        assert 0 < workload.events.min <= workload.events.mean <= workload.events.max
        assert sum(workload.events.by_workflow.values()) == pytest.approx(
            workload.events.mean, abs=0.5
        )
    # An accepted opening plays no development movement.
    assert set(report.fitnest.events.by_workflow) == MOVEMENTS_PLAYED
    assert report.fitnest.events.mean > report.baseline.events.mean
    assert len(report.sample_ratios) == 1 and report.ratio == report.sample_ratios[0]
    assert math.isfinite(report.ratio) and report.ratio > 0
    assert report.events_ratio > 1

    long = report.long
    assert long.rounds == 3 and long.development_runs >= 1
    assert long.development_events_per_round * 3 == pytest.approx(long.development_events, abs=0.1)
    assert long.parent_events > report.fitnest.events.by_workflow["negotiation"]
    assert long.parent_events_per_round > 0
    assert report.status_queries > 0
    assert report.machine.usable_cores >= 1 and report.machine.temporalio != "not installed"

    assert Report.model_validate_json(report.model_dump_json()) == report
    assert "ratio fitnest/baseline" in render(report)


def test_bench_refuses_a_run_of_no_negotiations(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(["--negotiations", "0"])
    assert exit_info.value.code == 2
    assert "negotiations" in capsys.readouterr().err


def test_bench_json_on_stdout_is_the_report_alone() -> None:
    # Its own dev server prints a banner on the stdout it inherits: the bench must keep it off.
    tiny = ["--negotiations", "1", "--rounds", "1", "--repeats", "1"]
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--json", *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = Report.model_validate(json.loads(run.stdout))
    assert report.options.negotiations == 1 and report.long.rounds == 1
