"""``python -m bench.inbox`` measures at a tiny size and reports consistent counts (no timings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.inbox import measure_inbox, render

pytestmark = pytest.mark.integration


async def test_inbox_bench_shows_one_page_however_many_are_pending(
    dev_env: WorkflowEnvironment, tmp_path: Path
):
    report = await measure_inbox(dev_env.client, tmp_path, few=3, many=30, repeats=2)
    assert (report.few.pending, report.few.listed) == (3, 3)
    assert (report.many.pending, report.many.listed) == (30, report.page_size)
    assert len(report.few.samples_ms) == len(report.many.samples_ms) == 2
    assert report.ratio > 0
    assert "ratio 30/3" in render(report)
