"""The ``fitnest`` command: start, respond, decide, retro, status, list, cancel, simulate, report, ui.

Exit codes: 0 done; 1 refused (a decision rejected, a negotiation closed or already started);
2 bad input (nothing was sent or started); 3 not found; 4 the cluster cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from temporalio.client import Client

from negotiation.models import (
    CounterpartyResponse,
    DealType,
    HumanDecision,
    NegotiationRequest,
    NegotiationStatus,
    PlaybookName,
    RetrospectiveAnswer,
    Verdict,
)
from negotiation.report import aggregate, render_table
from negotiation.terms import Offer, Terms
from starters import client as api
from starters.operator import add_commands as add_operator_commands
from starters.report import ReportFilterError, build_query, collect_results
from starters.simulate import Personality, SimulatedCounterparty, play
from workers import telemetry
from workers.client import ClusterUnreachable, connect
from workers.codec import KeyringError
from workers.process import exit_process
from workers.settings import Settings

EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_UNREACHABLE = 1, 2, 3, 4
M = TypeVar("M", bound=BaseModel)


class BadInput(Exception):
    """Input that cannot be used; printed as is, exit 2."""


def _load(path: str) -> Any:
    file = Path(path)
    try:
        text = file.read_text() if path != "-" else sys.stdin.read()
    except OSError as err:
        raise BadInput(f"cannot read {path}: {err.strerror}") from err
    try:
        return json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise BadInput(f"{path} is not valid JSON or YAML: {err}") from err


def _parse(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = [f"{source} is not a valid {model.__name__}:"]
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(top level)"
            lines.append(f"  - {where}: {e['msg']}")
        raise BadInput("\n".join(lines)) from err


def _dump(model: BaseModel) -> str:
    return model.model_dump_json(indent=2)


def _terms_line(offer: Offer | None, currency: str) -> str:
    if offer is None:
        return "-"
    t: Terms = offer.terms
    clauses = ",".join(t.non_standard_clauses) or "no extra clauses"
    return (
        f"v{offer.version} {t.total_contract_value} {currency}, {t.discount_pct}% off, "
        f"{t.payment_days}d, {t.term_months}m, cap {t.liability_cap_multiple}x, {clauses}"
    )


def render_status(s: NegotiationStatus) -> str:
    """A status as a short readable page."""
    lines = [
        f"Negotiation {s.negotiation_id} with {s.counterparty} ({s.deal_type.value})",
        f"  playbook:  {s.playbook.value if s.playbook else '-'}",
        f"  movement:  {s.movement.value}   round: {s.round}",
        f"  outcome:   {s.outcome.value if s.outcome else 'open'}{' - ' + s.outcome_reason if s.outcome_reason else ''}",
        f"  ours:      {_terms_line(s.our_terms, s.currency)}",
        f"  theirs:    {_terms_line(s.their_terms, s.currency)}",
    ]
    if s.pending_decisions:
        lines.append("  waiting for:")
        for p in s.pending_decisions:
            due = p.due_at.isoformat(timespec="minutes") if p.due_at else "-"
            lines.append(
                f"    {p.request_id}: {p.role.value} ({p.kind.value}, v{p.terms_version}, due {due}) - {p.reason}"
            )
    if s.rejected_messages:
        lines.append("  rejected messages:")
        lines.extend(f"    {r.message_id or '?'}: {r.reason}" for r in s.rejected_messages[-5:])
    if s.escalations:
        lines.append("  escalations:")
        lines.extend(
            f"    {e.request_id}: {e.from_role.value} -> {e.to_role.value} at {e.at.isoformat(timespec='minutes')}"
            for e in s.escalations
        )
    lines.append(
        f"  clocks:    internal wait {s.internal_wait_seconds / 3600:.1f} h, "
        f"counterparty wait {s.counterparty_wait_seconds / 3600:.1f} h; "
        f"{len(s.checkpoints)} checkpoints, {len(s.reminders)} reminders, {len(s.touchpoints)} touchpoints"
    )
    if s.retrospective_until is not None:
        lines.append(
            f"  retrospective open until {s.retrospective_until.isoformat(timespec='minutes')}"
        )
    elif s.retrospective:
        answered = [e for e in s.retrospective if not e.missing]
        lines.append(
            f"  retrospective: {len(answered)} answered, {len(s.retrospective) - len(answered)} missing"
        )
    lines.append("  recent:")
    lines.extend(
        f"    {e.at.isoformat(timespec='seconds')} [{e.movement.value}] {e.text}"
        for e in s.timeline[-8:]
    )
    return "\n".join(lines)


async def _start(args: argparse.Namespace, settings: Settings) -> int:
    request = _parse(NegotiationRequest, _load(args.file), args.file)
    try:
        api.check_startable(request)
    except ValueError as err:
        raise BadInput(str(err)) from err
    client = await connect(settings)
    receipt = await api.start_negotiation(client, request, task_queue=settings.task_queue)
    if not receipt.started:
        print(
            f"negotiation {receipt.negotiation_id} already exists; nothing was started",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    print(receipt.negotiation_id)
    return 0


async def _respond(args: argparse.Namespace, settings: Settings) -> int:
    response = _parse(CounterpartyResponse, _load(args.file), args.file)
    client = await connect(settings)
    if args.no_wait:
        await api.send_response(client, args.negotiation_id, response)
        print(f"response {response.message_id} delivered to {args.negotiation_id}")
        return 0
    try:
        receipt = await api.respond(client, args.negotiation_id, response)
    except api.ResponseRefused as err:
        print(f"response refused ({err.code}): {err}", file=sys.stderr)
        return EXIT_BAD_INPUT if err.code == "malformed" else EXIT_REFUSED
    if receipt.kept_for_later:
        print(f"response {response.message_id} delivered to {args.negotiation_id}")
    else:
        print(
            f"response {response.message_id} taken by {args.negotiation_id} "
            f"(sequence {receipt.sequence})"
        )
    return 0


async def _decide(args: argparse.Namespace, settings: Settings) -> int:
    terms = _parse(Terms, _load(args.terms), args.terms) if args.terms else None
    decision = _parse(
        HumanDecision,
        {
            "message_id": args.message_id or f"cli-{uuid.uuid4()}",
            "request_id": args.request_id,
            "approver": args.approver,
            "verdict": args.verdict,
            "terms_version": args.terms_version,
            "comment": args.comment or "",
            "revised_terms": terms,
        },
        "the decision",
    )
    receipt = await api.decide(await connect(settings), args.negotiation_id, decision)
    print(_dump(receipt))
    return 0


async def _retro(args: argparse.Namespace, settings: Settings) -> int:
    answer = _parse(
        RetrospectiveAnswer,
        {
            "message_id": args.message_id or f"cli-{uuid.uuid4()}",
            "participant": args.participant,
            "satisfaction": args.satisfaction,
            "note": args.note or "",
        },
        "the retrospective",
    )
    entry = await api.answer_retrospective(await connect(settings), args.negotiation_id, answer)
    print(_dump(entry))
    return 0


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    status = await api.get_status(await connect(settings), args.negotiation_id)
    print(_dump(status) if args.json else render_status(status))
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    rows = await api.list_negotiations(await connect(settings), args.query, args.limit)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return 0
    print(
        f"{'NEGOTIATION':36} {'STATUS':10} {'MOVEMENT':12} {'PLAYBOOK':24} {'OUTCOME':12} AWAITING"
    )
    for r in rows:
        print(
            f"{r.negotiation_id:36} {r.status:10} {r.movement or '-':12} {r.playbook or '-':24} "
            f"{r.outcome or '-':12} {','.join(r.awaiting) or '-'}"
        )
    return 0


async def _cancel(args: argparse.Namespace, settings: Settings) -> int:
    await api.cancel(await connect(settings), args.negotiation_id)
    print(f"cancellation requested for {args.negotiation_id}")
    return 0


def _report_date(value: str | None, flag: str) -> datetime | None:
    """A --since/--until value: an ISO date or date-time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise BadInput(
            f"{flag} {value!r} is not a date (YYYY-MM-DD or ISO 8601 date-time)"
        ) from err
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    filters: dict[str, Any] = {
        "playbook": args.playbook,
        "deal_type": args.deal_type,
        "since": _report_date(args.since, "--since"),
        "until": _report_date(args.until, "--until"),
        "task_queue": args.task_queue,
    }
    if args.limit < 1:
        raise BadInput("--limit must be at least 1")
    try:
        build_query(**filters)  # a bad filter is bad input: say so before connecting
        found = await collect_results(await connect(settings), **filters, limit=args.limit)
    except ReportFilterError as err:
        raise BadInput(str(err)) from err
    if len(found.results) == args.limit:
        print(f"only the newest {args.limit} negotiations count; raise --limit", file=sys.stderr)
    report = aggregate(found.results, found.left_out)
    print(_dump(report) if args.json else render_table(report))
    if args.json and report.left_out:  # the table says so itself
        print(
            f"{len(report.left_out)} unreadable negotiation(s) left out: see left_out",
            file=sys.stderr,
        )
    return 0


def fresh_request(request: NegotiationRequest, index: int, now: datetime) -> NegotiationRequest:
    """A copy with a new id (and a deadline in the future), for demos and load."""
    deadline = request.mandate.deadline
    if deadline <= now + timedelta(days=1):
        deadline = now + timedelta(days=30)
    suffix = f"{now:%Y%m%d-%H%M%S}-{index}-{uuid.uuid4().hex[:4]}"
    data = request.model_dump()
    data["negotiation_id"] = f"{request.negotiation_id[:80]}-sim-{suffix}"
    data["mandate"]["deadline"] = deadline
    return NegotiationRequest.model_validate(data)


#: How long the simulation waits for any one call: a server that stopped answering (or a query
#: no worker takes) ends that negotiation's simulation with a line instead of a hang.
SIMULATE_CALL_DEADLINE = timedelta(seconds=10)


async def _simulate_one(
    client: Client,
    negotiation_id: str,
    counterparty: SimulatedCounterparty,
    args: argparse.Namespace,
) -> int:
    """Play one negotiation and print how it ended; one that cannot be played is a line on
    stderr saying why. Returns its exit code."""
    try:
        result = await play(
            client,
            negotiation_id,
            counterparty,
            approve=args.approve,
            max_seconds=args.max_seconds,
        )
    except api.NegotiationClosed as err:
        print(f"{negotiation_id}: skipped, it is closed ({err.state})", file=sys.stderr)
        return EXIT_REFUSED
    except api.NegotiationNotFound:
        print(f"{negotiation_id}: skipped, no such negotiation", file=sys.stderr)
        return EXIT_NOT_FOUND
    except api.READ_FAILURES as err:
        print(f"{negotiation_id}: stopped, {api.unreadable_reason(err)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(
        f"{result.negotiation_id}: {result.outcome or 'still open'} after {result.rounds} rounds",
        flush=True,
    )
    return 0


async def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if not args.request and not args.negotiation_ids:
        raise BadInput("give --request FILE to start new negotiations, or negotiation ids to play")
    template = (
        _parse(NegotiationRequest, _load(args.request), args.request) if args.request else None
    )
    client = await connect(settings, deadline=SIMULATE_CALL_DEADLINE)
    ids = list(args.negotiation_ids)
    if template is not None:
        now = datetime.now(UTC)
        for i in range(args.count):
            request = fresh_request(template, i, now)
            await api.start_negotiation(client, request, task_queue=settings.task_queue)
            ids.append(request.negotiation_id)
            print(f"started {request.negotiation_id}", flush=True)
    personality = Personality(args.personality)
    codes = await asyncio.gather(
        *(
            _simulate_one(client, nid, SimulatedCounterparty(personality, seed=args.seed + i), args)
            for i, nid in enumerate(ids)
        )
    )
    # The worst of them: 4 (Temporal did not answer) over 3 (unknown) over 1 (closed).
    return max(codes, default=0)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="fitnest", description="Run business negotiations on Temporal."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("start", help="start a negotiation from a request file (JSON or YAML)")
    p.add_argument("file")
    p.set_defaults(run=_start)

    p = sub.add_parser(
        "respond", help="deliver a counterparty response from a file (answers whether it was taken)"
    )
    p.add_argument("negotiation_id")
    p.add_argument("file")
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="fire and forget (a signal): a refusal is recorded in the status instead",
    )
    p.set_defaults(run=_respond)

    p = sub.add_parser("decide", help="answer a decision request (waits for the receipt)")
    p.add_argument("negotiation_id")
    p.add_argument("request_id")
    p.add_argument("--approver", required=True)
    p.add_argument("--verdict", required=True, choices=[v.value for v in Verdict])
    p.add_argument("--comment")
    p.add_argument("--terms", help="file with revised terms (with --verdict revise)")
    p.add_argument(
        "--terms-version", type=int, help="the terms version decided on (default: the request's)"
    )
    p.add_argument("--message-id", help="idempotency key (default: a new one)")
    p.set_defaults(run=_decide)

    p = sub.add_parser("retro", help="answer a closed negotiation's retrospective")
    p.add_argument("negotiation_id")
    p.add_argument("--participant", required=True)
    p.add_argument("--satisfaction", required=True, type=int, help="1 (poor) to 5 (excellent)")
    p.add_argument("--note")
    p.add_argument("--message-id", help="idempotency key (default: a new one)")
    p.set_defaults(run=_retro)

    p = sub.add_parser("status", help="show a negotiation")
    p.add_argument("negotiation_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_status)

    p = sub.add_parser("list", help="list negotiations")
    p.add_argument(
        "--query", help="extra visibility filter, e.g. \"NegotiationPlaybook = 'automated'\""
    )
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_list)

    p = sub.add_parser("report", help="KPIs of completed negotiations, per playbook")
    p.add_argument("--playbook", help=f"only this playbook ({', '.join(PlaybookName)})")
    p.add_argument("--deal-type", help=f"only this deal type ({', '.join(DealType)})")
    p.add_argument("--since", help="closed at or after this date (ISO 8601; UTC without a zone)")
    p.add_argument("--until", help="closed before this date (ISO 8601; UTC without a zone)")
    p.add_argument("--task-queue", help="only negotiations run on this task queue")
    p.add_argument("--limit", type=int, default=1000, help="at most this many, newest first")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_report)

    p = sub.add_parser("cancel", help="cancel a negotiation")
    p.add_argument("negotiation_id")
    p.set_defaults(run=_cancel)

    p = sub.add_parser("simulate", help="play the counterparty (and optionally approvers)")
    p.add_argument("negotiation_ids", nargs="*")
    p.add_argument("--request", help="start new negotiations from this request file")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--personality", choices=[x.value for x in Personality], default="agreeable")
    p.add_argument(
        "--approve",
        action="store_true",
        help="approve pending decisions as the request's participants",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.set_defaults(run=_simulate)

    p = sub.add_parser("ui", help="serve the approver UI and JSON API; or hash a secret for it")
    p.add_argument("action", nargs="?", choices=["serve", "hash-secret"], default="serve")
    p.add_argument(
        "--new-api-key", metavar="KEY_ID", help="with hash-secret: make a new API key and its hash"
    )
    p.set_defaults(run=None)
    add_operator_commands(sub)
    return parser


def _ui(args: argparse.Namespace) -> int:
    # Imported here: the other commands need no web framework.
    from ui.server import hash_command, serve

    if args.action == "hash-secret":
        return hash_command(args.new_api_key)
    return serve(Settings())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fitnest`` command."""
    args = build_parser().parse_args(argv)
    code = _ui(args) if args.command == "ui" else _run(args)
    # Release the Temporal client (and its native half) now, while the interpreter is whole: left
    # to interpreter shutdown, collecting it crashes the process about one run in five, with
    # SIGSEGV or SIGABRT ("PyGILState_Release ... finalizing") after the output was printed,
    # which replaces the exit code (temporalio/sdk-python#300).
    gc.collect()
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        if hasattr(args, "run_sync"):
            return int(args.run_sync(args, Settings()))
        return asyncio.run(args.run(args, Settings()))
    except BadInput as err:
        print(str(err), file=sys.stderr)
        return EXIT_BAD_INPUT
    except api.DecisionRejected as err:
        print(f"decision rejected: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except api.NegotiationClosed as err:
        print(str(err), file=sys.stderr)
        return EXIT_REFUSED
    except api.NegotiationNotFound as err:
        print(str(err), file=sys.stderr)
        return EXIT_NOT_FOUND
    except KeyringError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ClusterUnreachable as err:
        print(str(err), file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """Console-script entry point: exits without interpreter finalization (see exit_process)."""
    telemetry.configure_from(Settings())  # log lines shaped like the worker's, on stderr
    exit_process(main())


if __name__ == "__main__":
    run()
