"""``python -m bench.inbox``: the approver inbox with many decisions pending, as a ratio.

The inbox page (``GET /`` of the approver UI, served by uvicorn, signed in as a deal owner) is
timed with ``--few`` negotiations awaiting the deal owner, then again once ``--many`` are (1,000 by
default). With ``--few`` at one full page (25), the ratio many/few is the number to read: the inbox lists one page from the visibility
store and queries only that page's negotiations, so it should stay near 1.

The pending negotiations are stand-ins: a workflow registered under the name
``NegotiationWorkflow`` that takes a real ``NegotiationRequest``, sets ``AwaitingDecision`` and
answers the ``status`` query with one pending decision. Real negotiations would take minutes to
bring to 1,000 pending decisions on 2 cores; the inbox reads nothing else from them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import uvicorn
import yaml
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.stage import dev_server, temporal_binary
from workers.devserver import free_port

with workflow.unsafe.imports_passed_through():
    from negotiation.models import (
        DecisionKind,
        Movement,
        NegotiationRequest,
        NegotiationStatus,
        PendingDecision,
        Role,
    )
    from workflows import search_attributes as sa

ROOT = Path(__file__).resolve().parents[1]
DEMO_REQUEST = ROOT / "ui" / "demo" / "renewal_for_approval.json"
PASSWORD = "bench"


@workflow.defn(name="NegotiationWorkflow", sandboxed=False)
class PendingStandIn:
    """Waits for the deal owner forever, as the inbox sees a negotiation waiting."""

    def __init__(self) -> None:
        self._status: NegotiationStatus | None = None

    @workflow.run
    async def run(self, request: NegotiationRequest) -> None:
        now = workflow.now()
        self._status = NegotiationStatus(
            negotiation_id=request.negotiation_id,
            deal_type=request.deal_type,
            counterparty=request.counterparty.name,
            currency=request.currency,
            movement=Movement.DEVELOPMENT,
            started_at=now,
            pending_decisions=[
                PendingDecision(
                    request_id="dev-1-counteroffer-deal_owner",
                    kind=DecisionKind.COUNTEROFFER,
                    role=Role.DEAL_OWNER,
                    required_authority=Decimal(0),
                    reason="the deal owner decides every counteroffer",
                    terms_version=2,
                    due_at=now + timedelta(hours=24),
                )
            ],
        )
        workflow.upsert_search_attributes(
            [
                sa.AWAITING_DECISION.value_set([Role.DEAL_OWNER.value]),
                sa.COUNTERPARTY.value_set(request.counterparty.name),
            ]
        )
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def status(self) -> NegotiationStatus:
        """What the real workflow's status query answers, reduced to what the inbox reads."""
        assert self._status is not None
        return self._status


@dataclass
class InboxMeasure:
    """Inbox page times at one number of pending negotiations."""

    pending: int
    listed: int
    median_ms: float
    samples_ms: list[float]


@dataclass
class InboxReport:
    """The inbox at few and at many pending, and the ratio of their medians."""

    few: InboxMeasure
    many: InboxMeasure
    ratio: float
    page_size: int


async def _start(client: Client, queue: str, count: int, tag: str, counterparty: str) -> None:
    template = json.loads(DEMO_REQUEST.read_text())
    template["counterparty"]["name"] = counterparty
    template["mandate"]["deadline"] = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        data = {**template, "negotiation_id": f"bench-inbox-{tag}-{i}-{uuid.uuid4().hex[:6]}"}
        async with gate:
            await client.start_workflow(
                "NegotiationWorkflow",
                NegotiationRequest.model_validate(data),
                id=data["negotiation_id"],
                task_queue=queue,
            )

    await asyncio.gather(*(one(i) for i in range(count)))


async def _visible(client: Client, count: int, counterparty: str) -> None:
    query = (
        f"WorkflowType = 'NegotiationWorkflow' AND {sa.AWAITING_DECISION.name} = 'deal_owner'"
        f" AND {sa.COUNTERPARTY.name} = '{counterparty}'"
    )
    while (await client.count_workflows(query)).count < count:
        await asyncio.sleep(0.2)


async def _sample(
    http: httpx.AsyncClient, pending: int, repeats: int, counterparty: str
) -> InboxMeasure:
    samples = []
    listed = 0
    for _ in range(repeats):
        began = time.perf_counter()
        page = await http.get("/", params={"counterparty": counterparty})
        samples.append((time.perf_counter() - began) * 1000)
        if page.status_code != 200:
            raise RuntimeError(f"the inbox answered {page.status_code}")
        listed = page.text.count('data-testid="inbox-row"')
    return InboxMeasure(pending, listed, statistics.median(samples), samples)


def _directory(workdir: Path) -> Path:
    from ui.directory import hash_secret

    path = workdir / "approvers.yaml"
    entry = {
        "user": "ana",
        "participant": "ana",
        "role": "deal_owner",
        "authority_limit": "100000",
        "password_hash": hash_secret(PASSWORD),
    }
    path.write_text(yaml.safe_dump({"approvers": [entry]}))
    return path


async def measure_inbox(
    client: Client, workdir: Path, *, few: int, many: int, repeats: int
) -> InboxReport:
    """Time the inbox page at ``few`` and at ``many`` pending negotiations."""

    from tests.ui.conftest import sign_in  # the same sign-in as the UI tests
    from ui.app import create_app
    from ui.directory import load_directory
    from ui.pages import INBOX_PAGE_SIZE
    from workers.settings import Settings

    queue = f"bench-inbox-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        task_queue=queue,
        ui_secret="bench",
        ui_audit_log=workdir / "audit.jsonl",
    )
    app = create_app(settings, load_directory(_directory(workdir)), client)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    async with Worker(client, task_queue=queue, workflows=[PendingStandIn]):
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                await sign_in(http, "ana", PASSWORD)
                # Its own counterparty: other negotiations on the server stay out of the page.
                who = f"Bench {uuid.uuid4().hex[:8]}"
                await _start(client, queue, few, "few", who)
                await _visible(client, few, who)
                await _sample(http, few, 2, who)  # warm-up: imports, templates, connections
                low = await _sample(http, few, repeats, who)
                await _start(client, queue, many - few, "many", who)
                await _visible(client, many, who)
                high = await _sample(http, many, repeats, who)
        finally:
            server.should_exit = True
            await serving
    return InboxReport(low, high, high.median_ms / low.median_ms, INBOX_PAGE_SIZE)


def render(report: InboxReport) -> str:
    """The report as text."""
    lines = [f"inbox page ({report.page_size} negotiations a page), median of samples"]
    for m in (report.few, report.many):
        lines.append(f"  {m.pending:>5} pending: {m.median_ms:7.1f} ms  ({m.listed} rows shown)")
    lines.append(f"  ratio {report.many.pending}/{report.few.pending}: {report.ratio:.2f}")
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with dev_server(temporal_binary()) as env:
            report = await measure_inbox(
                env.client, Path(tmp), few=args.few, many=args.many, repeats=args.repeats
            )
    print(json.dumps(asdict(report), indent=2) if args.json else render(report))


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m bench.inbox``."""
    parser = argparse.ArgumentParser(prog="python -m bench.inbox", description=__doc__)
    parser.add_argument("--few", type=int, default=25, help="one full inbox page")
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.few < args.many:
        sys.exit("--few must be at least 1 and below --many")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
