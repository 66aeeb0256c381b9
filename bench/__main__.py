"""``python -m bench [--negotiations N] [--rounds R] [--repeats K] [--json]`` (or ``make bench``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

import structlog

from bench.measure import measure
from bench.negotiations import BenchError
from bench.report import Options, Report, render
from bench.stage import dev_server, temporal_binary, workers
from workers.devserver import DevServerError


def parse(argv: list[str] | None = None) -> tuple[Options, bool]:
    """The options, and whether to print JSON."""
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Fitnest throughput as a ratio against a minimal workflow, on a fresh "
        "in-memory dev server. Read bench/README.md for what the numbers mean.",
    )
    parser.add_argument(
        "--negotiations",
        type=int,
        default=defaults.negotiations,
        metavar="N",
        help="concurrent runs per sample, of each workload (default %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=defaults.rounds,
        metavar="R",
        help="rounds of the long negotiation (default %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=defaults.repeats,
        metavar="K",
        help="Fitnest samples, each between two baseline samples (default %(default)s)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=defaults.poll_seconds,
        metavar="SECONDS",
        help="how often the simulated counterparty reads the status (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        options = Options(
            negotiations=args.negotiations,
            rounds=args.rounds,
            repeats=args.repeats,
            poll_seconds=args.poll,
        )
    except ValueError as err:
        parser.error(str(err))
    return options, args.json


async def run(options: Options) -> Report:
    """Start a dev server and the workers, measure, stop everything."""
    temporal = temporal_binary()
    with tempfile.TemporaryDirectory(prefix="fitnest-bench-") as workdir:
        async with (
            dev_server(temporal, Path(workdir)) as env,
            workers(env.client, Path(workdir)) as queues,
        ):
            return await measure(env.client, queues, options, temporal)


def quiet_logs() -> None:
    """Only warnings and errors, on stderr: stdout carries the report (JSON must stay clean)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    options, as_json = parse(argv)
    quiet_logs()
    print(
        f"bench: {options.negotiations} concurrent runs x {options.repeats} samples, "
        f"then {options.rounds} rounds ...",
        file=sys.stderr,
        flush=True,
    )
    try:
        report = asyncio.run(run(options))
    except (BenchError, DevServerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(report.model_dump_json(indent=2) if as_json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
