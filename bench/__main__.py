"""``python -m bench [throughput|latency|scale|long|timeskip|all] [options]`` (or ``make bench``).

Each benchmark runs Fitnest and a plain-Temporal baseline side by side on one fresh server and
reports ratios; docs/performance.md says what each measures and shows a real run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import structlog
from pydantic import BaseModel, ValidationError

from bench.stage import BenchError
from bench.suite import BENCHMARKS, SuiteOptions, SuiteReport, render, run_suite
from workers.devserver import DevServerError

#: Smaller sizes for ``all`` (what ``make bench`` runs): every benchmark in a few minutes.
ALL_DEFAULTS = {"long.rounds": 100, "scale.parked": 200}

#: Command-line flags: (flag, section.field, type, help).
FLAGS: dict[str, list[tuple[str, str, type, str]]] = {
    "throughput": [
        ("--concurrency", "throughput.concurrency", int, "negotiations started at once per batch"),
        ("--poll", "throughput.poll_seconds", float, "the simulated counterparty's status poll, s"),
        ("--profile", "throughput.profile", Path, "record the Fitnest worker with py-spy to FILE"),
    ],
    "latency": [
        ("--samples", "latency.samples", int, "samples of each kind per repetition"),
        ("--latency-poll", "latency.poll_seconds", float, "poll for a signal's effect, s"),
    ],
    "scale": [
        ("--parked", "scale.parked", int, "negotiations parked (10000 for the issue's target)"),
        ("--cache", "scale.cache", int, "the workers' max_cached_workflows"),
        ("--queries", "scale.queries", int, "evicted-status queries per pass"),
    ],
    "long": [("--rounds", "long.rounds", int, "rounds of the long negotiation")],
    "timeskip": [],
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Fitnest against plain Temporal, as ratios measured in the same run. "
        "docs/performance.md explains every number.",
    )
    parser.add_argument(
        "benchmark",
        nargs="?",
        default="all",
        choices=[*BENCHMARKS, "all"],
        help="which benchmark (default: all, at small sizes)",
    )
    parser.add_argument("--repeats", type=int, help="repetitions (each benchmark's own default)")
    parser.add_argument(
        "--db", type=Path, metavar="FILE", help="dev server state in this SQLite file"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON, not a table")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the JSON report here (default .data/bench/<benchmark>-<time>.json)",
    )
    for name, flags in FLAGS.items():
        group = parser.add_argument_group(name)
        for flag, _, kind, text in flags:
            group.add_argument(flag, type=kind, help=text)
    return parser


def parse(argv: list[str] | None = None) -> tuple[SuiteOptions, argparse.Namespace]:
    """The suite's options from the command line, and the parsed arguments."""
    parser = _parser()
    args = parser.parse_args(argv)
    chosen = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    values: dict[str, dict[str, object]] = {name: {} for name in BENCHMARKS}
    if args.benchmark == "all":
        for key, value in ALL_DEFAULTS.items():
            section, field = key.split(".")
            values[section][field] = value
    for flags in FLAGS.values():
        for flag, key, _, _ in flags:
            given = getattr(args, flag.lstrip("-").replace("-", "_"))
            if given is not None:
                section, field = key.split(".")
                values[section][field] = given
    if args.repeats is not None:
        for name in BENCHMARKS:
            values[name]["repeats"] = args.repeats
    try:
        options = SuiteOptions(run=chosen, db_file=args.db, **values)  # type: ignore[arg-type]
    except ValidationError as err:
        parser.error(str(err))
    return options, args


def quiet_logs() -> None:
    """Only warnings and errors, on stderr: stdout carries the report (JSON must stay clean)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def write(report: BaseModel, out: Path) -> None:
    """Write ``report`` as JSON to ``out``, creating its folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.model_dump_json(indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    options, args = parse(argv)
    quiet_logs()
    print(f"bench: {', '.join(options.run)} ...", file=sys.stderr, flush=True)
    try:
        report: SuiteReport = asyncio.run(run_suite(options))
    except (BenchError, DevServerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(".data") / "bench" / f"{args.benchmark}-{stamp}.json"
    write(report, out)
    print(f"bench: JSON report written to {out}", file=sys.stderr)
    print(report.model_dump_json(indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
