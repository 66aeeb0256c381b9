"""``python -m bench``: every benchmark runs at a tiny size and reports well-formed results.

Smoke tests only: no timing is asserted anywhere (performance is read from the bench's ratios,
never from a test's clock). Counts that do not depend on timing are checked.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.__main__ import parse
from bench.keys import bench_converter, bench_key_file
from bench.latency import LatencyOptions, measure_latency
from bench.long import LongOptions, measure_long
from bench.profile import summarise
from bench.report import Target
from bench.scale import ScaleOptions, measure_scale
from bench.stage import Stage, workers
from bench.suite import SuiteReport, render
from bench.throughput import ThroughputOptions, measure_throughput
from bench.timeskip import TimeSkipOptions, measure_timeskip
from tests.encryption import TEST_KEY_FILE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MOVEMENTS = {"negotiation", "preparation", "opening", "development", "closure"}


@pytest.fixture(scope="module")
async def stage(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    """Both workers, in their own processes, on the shared dev server.

    The shared server's client seals with the test keyring: the bench's workers must open with it.
    """
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FITNEST_KEY_FILE", str(TEST_KEY_FILE))
        bench_key_file.cache_clear()
        bench_converter.cache_clear()
        try:
            async with workers(dev_env.client, tmp_path_factory.mktemp("bench")) as both:
                yield both
        finally:
            bench_key_file.cache_clear()
            bench_converter.cache_clear()


def _well_formed(targets: list[Target]) -> None:
    assert targets
    for target in targets:
        assert math.isfinite(target.value) and target.limit > 0
        assert target.line().startswith(("met", "MISSED"))


async def test_throughput_counts_every_workflow_and_round_of_the_negotiations(stage):
    result = await measure_throughput(stage, ThroughputOptions(concurrency=1, repeats=1))

    assert len(result.baseline_per_second.values) == 2  # before and after the one batch
    assert len(result.fitnest_per_second.values) == len(result.ratio.values) == 1
    assert result.ratio.median > 0
    assert set(result.events_by_workflow) == MOVEMENTS
    assert result.events_per_negotiation == pytest.approx(sum(result.events_by_workflow.values()))
    assert result.events_per_negotiation > result.baseline_events > 0
    assert 0 < result.workflow_tasks_per_negotiation < result.events_per_negotiation
    assert result.event_ratio == pytest.approx(
        result.baseline_events / result.events_per_negotiation, abs=1e-4
    )
    rates = result.events_per_second
    assert rates["fitnest"] == pytest.approx(
        result.fitnest_per_second.median * result.events_per_negotiation, rel=0.01
    )
    assert "event_ratio" in result.model_dump()  # in the JSON report too
    per_round = result.per_round
    assert result.rounds == 3
    assert per_round.development == pytest.approx(
        sum(per_round.development_by_type.values()), abs=0.1
    )
    assert per_round.parent == pytest.approx(sum(per_round.parent_by_type.values()), abs=0.1)
    # The development movement completes once, and the parent sees it start and complete.
    assert per_round.development_by_type["WorkflowExecutionCompleted"] == pytest.approx(
        1 / 3, abs=0.01
    )
    assert per_round.parent_by_type["ChildWorkflowExecutionCompleted"] == pytest.approx(
        1 / 3, abs=0.01
    )
    _well_formed(result.targets)


async def test_latency_takes_every_sample_of_both_interactions(stage):
    result = await measure_latency(stage, LatencyOptions(samples=2, repeats=1))

    for latency in (result.decide, result.signal_to_status, result.signal_to_effect):
        assert latency.fitnest.count == latency.baseline.count == 2
        for p in (latency.fitnest, latency.baseline):
            assert 0 < p.p50 <= p.p95 <= p.p99 <= p.max
        assert latency.p99_ratio > 0 and len(latency.repeat_p99_ratios.values) == 1
    _well_formed(result.targets)


async def test_scale_parks_both_workloads_and_queries_evicted_runs(
    dev_env: WorkflowEnvironment, tmp_path: Path
):
    options = ScaleOptions(parked=6, cache=2, queries=3, repeats=1, concurrency=3)
    async with workers(dev_env.client, tmp_path, max_cached_workflows=options.cache) as small:
        result = await measure_scale(small, options)

    for memory in (result.fitnest_memory, result.baseline_memory):
        assert min(memory.idle, memory.half, memory.parked) > 0
    assert result.evicted_status.count == result.evicted_baseline_query.count == 3
    assert result.projected_fitnest_mb >= result.fitnest_memory.parked or (
        result.fitnest_memory.per_parked_kib < 0
    )
    _well_formed(result.targets)


async def test_long_sizes_every_run_of_the_negotiation(stage):
    result = await measure_long(stage, LongOptions(rounds=3))

    names = [run.workflow for run in result.runs]
    assert names[0] == "negotiation" and set(names) == MOVEMENTS
    assert result.largest_run in result.runs
    assert all(run.bytes > run.events > 0 for run in result.runs)
    assert result.total_events == sum(run.events for run in result.runs)
    assert result.baseline_events > 0 and len(result.time_ratio.values) == 1
    _well_formed(result.targets)


async def test_timeskip_plays_the_ninety_days_on_its_own_server(tmp_path: Path):
    result = await measure_timeskip(TimeSkipOptions(repeats=1), tmp_path)

    assert len(result.fitnest_seconds.values) == len(result.baseline_seconds.values) == 1
    assert result.ratio.median > 0
    _well_formed(result.targets)


def test_bench_refuses_a_scale_run_that_would_not_evict(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        parse(["scale", "--parked", "10", "--cache", "10"])
    assert exit_info.value.code == 2
    assert "must exceed cache" in capsys.readouterr().err


def test_all_runs_every_benchmark_at_the_small_sizes():
    options, _ = parse(["all"])
    assert options.run == ["throughput", "latency", "scale", "long", "timeskip"]
    assert options.long.rounds < LongOptions().rounds
    assert parse(["long"])[0].long.rounds == 500


def test_bench_json_on_stdout_is_the_report_alone_and_also_written(tmp_path: Path):
    # Servers print banners on the stdout they inherit: the bench must keep them off.
    out = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "timeskip", "--repeats", "1", "--json", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = SuiteReport.model_validate(json.loads(run.stdout))
    assert report.timeskip is not None and report.throughput is None
    assert SuiteReport.model_validate_json(out.read_text()) == report
    assert "targets (issue 7)" in render(report)


def test_a_profile_summary_puts_samples_in_their_areas_and_leaves_thread_roots_out(
    tmp_path: Path,
):
    stacks = tmp_path / "stacks.txt"
    root = "<module> (workers/worker.py:74);run (asyncio/runners.py:190)"
    stacks.write_text(
        f"{root};activate (temporalio/worker/_workflow_instance.py:10);"
        "validate_json (pydantic/type_adapter.py:466) 3\n"
        f"{root};run (workflows/development.py:50) 1\n"
    )
    summary = summarise(stacks, seconds=1.0)

    assert summary.samples == 4 and summary.busy_share == pytest.approx(4 / 200)
    assert summary.by_area_self == {"pydantic": 75.0, "fitnest workflows": 25.0}
    assert summary.by_area_inclusive["temporalio workflow instance"] == 75.0
    assert "fitnest worker" not in summary.by_area_inclusive  # the thread's root frame
    assert next(iter(summary.top_functions_self)).startswith("validate_json")
