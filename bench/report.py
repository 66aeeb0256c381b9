"""What every benchmark reports: the machine, spreads of repeated samples, targets met or missed."""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, Field


class Spread(BaseModel):
    """Repeated measurements of one quantity: the median and how far they scatter."""

    median: float
    min: float
    max: float
    values: list[float] = Field(description="Every measurement, in the order taken.")

    @classmethod
    def of(cls, values: Sequence[float], digits: int = 4) -> Spread:
        """The spread of ``values`` (at least one)."""
        return cls(
            median=round(statistics.median(values), digits),
            min=round(min(values), digits),
            max=round(max(values), digits),
            values=[round(v, digits) for v in values],
        )

    def text(self, fmt: str = ".3f") -> str:
        """``median (min-max)``."""
        return f"{self.median:{fmt}} ({self.min:{fmt}}-{self.max:{fmt}})"


class Percentiles(BaseModel):
    """Latency samples in milliseconds: p50, p95, p99 (nearest rank) and the count."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, millis: Sequence[float]) -> Percentiles:
        """The percentiles of ``millis`` (at least one sample)."""
        ordered = sorted(millis)

        def rank(p: float) -> float:
            return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 2)

        return cls(count=len(ordered), p50=rank(50), p95=rank(95), p99=rank(99), max=rank(100))


class Target(BaseModel):
    """One target of issue 7, checked against this run."""

    name: str
    value: float
    limit: float
    at_most: bool = Field(default=True, description="True: value <= limit; False: value >= limit.")
    note: str = ""

    @property
    def met(self) -> bool:
        """Whether this run meets the target."""
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def line(self) -> str:
        """``MET    name: value <= limit (note)``."""
        sign = "<=" if self.at_most else ">="
        note = f"  ({self.note})" if self.note else ""
        verdict = "met   " if self.met else "MISSED"
        return f"{verdict} {self.name}: {self.value:g} {sign} {self.limit:g}{note}"


class Machine(BaseModel):
    """Where and with what the numbers were measured."""

    cpu_count: int | None
    usable_cores: int
    load_average: tuple[float, float, float]
    platform: str
    python: str
    temporalio: str
    temporal_cli: str
    fitnest: str
    server: str
    measured_at: datetime


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(temporal: Path, server: str) -> Machine:
    """The machine, its load, and the versions of Python, the SDK, the server and Fitnest."""
    try:
        cli = subprocess.run(
            [str(temporal), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        cli = f"unknown ({type(err).__name__})"
    one, five, fifteen = os.getloadavg()
    return Machine(
        cpu_count=os.cpu_count(),
        usable_cores=len(os.sched_getaffinity(0)),
        load_average=(round(one, 2), round(five, 2), round(fifteen, 2)),
        platform=platform.platform(),
        python=platform.python_version(),
        temporalio=_version("temporalio"),
        temporal_cli=cli.removeprefix("temporal version "),
        fitnest=_version("fitnest"),
        server=server,
        measured_at=datetime.now(UTC).replace(microsecond=0),
    )


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as aligned text: the first column left, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
