"""Where the worker's time goes: py-spy samples of the worker process, summarised.

``python -m bench throughput --profile FILE`` attaches ``py-spy record`` (``pip install py-spy``)
to the Fitnest worker's process for the measured batches and writes its collapsed stacks to FILE
(``speedscope`` or ``flamegraph.pl`` read them); the report gets a summary: the share of samples
by the area of the innermost frame, the share whose stack passes through each area, and the
functions that take the most samples themselves.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import BaseModel, Field

from bench.report import table
from bench.stage import BenchError

RATE = 200

#: Areas of the worker's code, by a piece of the frame's file path; the first match wins.
AREAS: tuple[tuple[str, str], ...] = (
    ("workflow_sandbox", "temporalio sandbox"),
    ("temporalio/worker/_workflow_instance", "temporalio workflow instance"),
    ("temporalio/converter", "temporalio data converter"),
    ("temporalio/", "temporalio, other"),
    ("pydantic", "pydantic"),
    ("google/protobuf", "protobuf"),
    ("structlog", "logging"),
    ("logging/", "logging"),
    ("asyncio/", "asyncio"),
    ("workflows/", "fitnest workflows"),
    ("negotiation/", "fitnest domain"),
    ("activities/", "fitnest activities"),
    ("workers/", "fitnest worker"),
    ("importlib", "imports"),
)

#: Frames every stack of a thread starts with: not an area's work.
ROOTS = ("runpy", "workers/worker.py", "threading.py", "asyncio/runners.py", "base_events.py:6")


class ProfileSummary(BaseModel):
    """Samples of the worker while Python ran in it (the thread holding the GIL)."""

    samples: int
    seconds: float = Field(description="How long the worker was recorded.")
    busy_share: float = Field(
        description="Samples over rate x seconds: the share of one core Python ran in the worker."
    )
    by_area_self: dict[str, float]
    by_area_inclusive: dict[str, float]
    top_functions_self: dict[str, float]
    file: str


def _py_spy() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "py-spy"
    found = str(candidate) if candidate.exists() else shutil.which("py-spy")
    if found is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


@asynccontextmanager
async def py_spy(pid: int, out: Path) -> AsyncIterator[list[float]]:
    """Record process ``pid`` with py-spy while the block runs; stacks to ``out``.

    Yields a list that holds the seconds recorded once the block has ended.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    # --gil: only the thread holding the GIL is sampled, i.e. Python actually running; a thread
    # waiting on a queue or in epoll is otherwise easily counted as busy.
    argv = [_py_spy(), "record", "--pid", str(pid), "--format", "raw", "--rate", str(RATE), "--gil"]
    process = subprocess.Popen(
        [*argv, "--nonblocking", "--output", str(out)], stdout=sys.stderr, stderr=sys.stderr
    )
    await asyncio.sleep(1)  # py-spy attaches
    if process.poll() is not None:
        raise BenchError(f"py-spy could not attach to process {pid} (exit {process.returncode})")
    recorded: list[float] = []
    began = time.perf_counter()
    try:
        yield recorded
    finally:
        recorded.append(time.perf_counter() - began)
        process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        await asyncio.to_thread(process.wait, 60)


def _area(frame: str) -> str:
    return next((name for piece, name in AREAS if piece in frame), "python, other")


def summarise(stacks: Path, seconds: float, top: int = 15) -> ProfileSummary:
    """Summarise py-spy's collapsed stacks (``frame;frame;... count`` lines, root first)."""
    self_area: Counter[str] = Counter()
    through: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        path, _, count_text = line.rpartition(" ")
        if not path or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = path.split(";")
        total += count
        self_area[_area(frames[-1])] += count
        for area in {_area(f) for f in frames if not any(r in f for r in ROOTS)}:
            through[area] += count
        functions[frames[-1]] += count
    if total == 0:
        raise BenchError(f"py-spy recorded no busy samples in {stacks}")

    def shares(counter: Counter[str], n: int | None = None) -> dict[str, float]:
        return {k: round(100 * v / total, 1) for k, v in counter.most_common(n)}

    return ProfileSummary(
        samples=total,
        seconds=round(seconds, 1),
        busy_share=round(total / (RATE * seconds), 3),
        by_area_self=shares(self_area),
        by_area_inclusive=shares(through),
        top_functions_self=shares(functions, top),
        file=str(stacks),
    )


def render_profile(summary: ProfileSummary) -> list[str]:
    """The summary as text."""
    areas = list(summary.by_area_inclusive)
    rows = [("worker area (% of busy samples)", "self", "in stack")]
    rows += [
        (a, f"{summary.by_area_self.get(a, 0):g}", f"{summary.by_area_inclusive[a]:g}")
        for a in areas
    ]
    tops = [("busiest functions (self %)", "")]
    tops += [(f, f"{share:g}") for f, share in summary.top_functions_self.items()]
    return [
        f"profile: the Fitnest worker ran Python {100 * summary.busy_share:.0f} % of one core "
        f"({summary.samples} samples with the GIL in {summary.seconds:g} s; py-spy, {summary.file})",
        *table(rows),
        *table(tops),
    ]
