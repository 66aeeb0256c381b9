"""``fitnest report`` on the real dev server: KPIs read back through Temporal from closed negotiations.

A batch of negotiations is played to completion on a task queue of this module's own; every
report is filtered on that task queue, so negotiations other tests leave on the shared server
never count.
"""

from __future__ import annotations

import asyncio
import html
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from negotiation.models import Movement, NegotiationResult, Outcome, RetrospectiveAnswer
from negotiation.policy import Policy
from negotiation.report import KpiReport, aggregate, render_table
from starters import client as api
from starters.report import CollectedResults, collect_results
from tests.integration.fitnest_cli import Fitnest
from tests.ui.conftest import serving, sign_in, write_directory
from tests.unreadable import foreign_worker
from tests.workflows.harness import Negotiation, make_request, terms
from ui.app import create_app
from ui.directory import load_directory
from workers.client import with_deadline
from workers.settings import Settings
from workers.worker import build_worker

pytestmark = pytest.mark.integration

#: How long a completed negotiation may take to show in visibility (it is eventually consistent).
VISIBLE_WITHIN = 15.0


@dataclass(frozen=True)
class Batch:
    """Negotiations played to completion on ``task_queue``, and their results."""

    task_queue: str
    results: list[NegotiationResult]
    cli: Fitnest


def _settings(workdir: Path) -> Settings:
    """Worker settings; the retrospective window is closed at once when the policy has one,
    so that each negotiation's workflow completes as soon as its business is done."""
    policy_file = None
    if "retrospective_days" in Policy.model_fields:
        policy_file = workdir / "policy.json"
        policy_file.write_text(json.dumps({"retrospective_days": 0}))
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        outbox_dir=workdir / "o",
        ledger_dir=workdir / "l",
        policy_file=policy_file,
    )


async def _agree(n: Negotiation) -> NegotiationResult:
    """The counterparty accepts the opening offer, then signs."""
    await n.respond("accept")
    await n.until(lambda s: s.movement == Movement.CLOSURE)
    await n.respond("sign")
    return await asyncio.wait_for(n.result(), 30)


async def _walk_away(n: Negotiation) -> NegotiationResult:
    """The counterparty counters; the deal owner rejects the counteroffer."""
    await n.respond("counter", terms(50000, 10, 45))
    pending = await n.pending("deal_owner")
    await n.decide(pending.request_id, "ana", "reject")
    return await asyncio.wait_for(n.result(), 30)


@pytest.fixture(scope="module")
async def batch(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Batch]:
    """Three automated negotiations that agree (one an enterprise sale), two conductor-led ones
    that walk away; played concurrently and waited for until their workflows complete."""
    workdir = tmp_path_factory.mktemp("report")
    settings = _settings(workdir)
    task_queue = f"report-{uuid.uuid4().hex[:10]}"
    client = dev_env.client
    plays: list[tuple[str, dict[str, Any], Callable[[Negotiation], Awaitable[NegotiationResult]]]]
    plays = [
        ("automated", {}, _agree),
        ("automated", {}, _agree),
        ("automated", {"deal_type": "enterprise_sale"}, _agree),
        ("conductor_led", {}, _walk_away),
        ("conductor_led", {}, _walk_away),
    ]

    async def play(
        playbook: str,
        overrides: dict[str, Any],
        how: Callable[[Negotiation], Awaitable[NegotiationResult]],
    ) -> NegotiationResult:
        request = make_request(playbook, **overrides)
        receipt = await api.start_negotiation(client, request, task_queue=task_queue)
        assert receipt.started
        return await how(Negotiation(client, request, workdir / "o"))

    async with build_worker(client, settings, task_queue=task_queue):
        results = await asyncio.gather(*(play(*p) for p in plays))
    # The worker is gone: from here on, everything is read from the server alone.
    yield Batch(task_queue, list(results), Fitnest(client, task_queue, workdir, workdir / "o"))


async def _visible(client: Client, expected: int, **filters: Any) -> list[NegotiationResult]:
    """``collect_results`` once it sees ``expected`` negotiations (visibility lags a little)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + VISIBLE_WITHIN
    while True:
        found = (await collect_results(client, **filters)).results
        if len(found) >= expected or loop.time() > end:
            return found
        await asyncio.sleep(0.2)


def _ids(results: list[NegotiationResult]) -> set[str]:
    return {r.negotiation_id for r in results}


async def test_the_batch_played_as_intended(batch: Batch) -> None:
    outcomes = [r.outcome for r in batch.results]
    assert outcomes == [Outcome.AGREED] * 3 + [Outcome.WALKED_AWAY] * 2


async def test_report_reads_every_completed_negotiation_of_the_task_queue(
    batch: Batch, dev_env: WorkflowEnvironment
) -> None:
    found = await _visible(dev_env.client, 5, task_queue=batch.task_queue)
    assert _ids(found) == _ids(batch.results)
    assert {r.negotiation_id: r for r in found} == {r.negotiation_id: r for r in batch.results}
    report = aggregate(found)
    assert report.overall.count == 5
    assert report.overall.agreed_rate == pytest.approx(0.6)
    assert report.overall.outcomes[Outcome.AGREED] == 3
    assert report.overall.outcomes[Outcome.WALKED_AWAY] == 2
    assert list(report.by_playbook) == ["conductor_led", "automated"]
    automated, conductor = report.by_playbook["automated"], report.by_playbook["conductor_led"]
    assert (automated.count, automated.agreed_rate) == (3, 1.0)
    assert automated.mean_deal_quality == 100  # every opening offer was the target
    assert automated.compliance_rate == 1.0 and automated.mean_rounds == 0
    assert (conductor.count, conductor.agreed_rate) == (2, 0.0)
    assert conductor.outcomes[Outcome.WALKED_AWAY] == 2
    assert conductor.mean_deal_quality is None and conductor.compliance_rate is None
    assert report.by_deal_type["renewal"].count == 4
    assert report.by_deal_type["enterprise_sale"].count == 1


async def test_report_filters_by_playbook_and_deal_type(
    batch: Batch, dev_env: WorkflowEnvironment
) -> None:
    client, tq = dev_env.client, batch.task_queue
    automated = await _visible(client, 3, task_queue=tq, playbook="automated")
    assert _ids(automated) == {r.negotiation_id for r in batch.results[:3]}
    conductor = await _visible(client, 2, task_queue=tq, playbook="conductor_led")
    assert _ids(conductor) == {r.negotiation_id for r in batch.results[3:]}
    assert {r.outcome for r in conductor} == {Outcome.WALKED_AWAY}
    sales = await _visible(client, 1, task_queue=tq, deal_type="enterprise_sale")
    assert _ids(sales) == {batch.results[2].negotiation_id}
    assert (
        await collect_results(client, task_queue=tq, playbook="collaborative_ensemble")
        == CollectedResults()
    )
    elsewhere = await collect_results(client, task_queue=f"{tq}-elsewhere")
    assert elsewhere == CollectedResults()  # the filter holds


async def test_fitnest_report_json_matches_the_aggregate(
    batch: Batch, dev_env: WorkflowEnvironment
) -> None:
    await _visible(dev_env.client, 5, task_queue=batch.task_queue)
    run = await batch.cli.ok("report", "--json", "--task-queue", batch.task_queue)
    assert KpiReport.model_validate_json(run.out) == aggregate(batch.results)

    run = await batch.cli.ok(
        "report", "--json", "--task-queue", batch.task_queue, "--playbook", "automated"
    )
    report = KpiReport.model_validate_json(run.out)
    assert report.overall.count == 3 and list(report.by_playbook) == ["automated"]

    run = await batch.cli.ok("report", "--task-queue", batch.task_queue)
    assert run.out.startswith("KPIs of 5 closed negotiations")
    rows = {line.split()[0]: line.split() for line in run.out.split("\n\n")[0].splitlines()[1:]}
    assert rows["automated"][:3] == ["automated", "3", "100.0"]
    assert rows["conductor_led"][:3] == ["conductor_led", "2", "0.0"]
    assert rows["all"][:3] == ["all", "5", "60.0"]


async def test_fitnest_report_window_excludes_negotiations_closed_outside_it(
    batch: Batch, dev_env: WorkflowEnvironment
) -> None:
    await _visible(dev_env.client, 5, task_queue=batch.task_queue)
    run = await batch.cli.ok(
        "report", "--json", "--task-queue", batch.task_queue, "--until", "2000-01-01"
    )
    assert KpiReport.model_validate_json(run.out).overall.count == 0
    run = await batch.cli.ok(
        "report", "--json", "--task-queue", batch.task_queue, "--since", "2000-01-01"
    )
    assert KpiReport.model_validate_json(run.out).overall.count == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--playbook", "bogus"), "unknown playbook 'bogus'"),
        (("--deal-type", "lease"), "unknown deal type 'lease'"),
        (("--since", "last tuesday"), "--since 'last tuesday' is not a date"),
        (("--task-queue", "q' OR 'a'='a"), "is not a plain name"),
    ],
)
async def test_fitnest_report_refuses_a_bad_filter_with_exit_2(
    batch: Batch, args: tuple[str, ...], message: str
) -> None:
    run = await batch.cli("report", *args)
    assert run.rc == 2, str(run)
    assert message in run.err and run.out == ""


async def test_a_negotiation_in_its_retrospective_window_is_reported_provisionally(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_env.client
    task_queue = f"report-retro-{uuid.uuid4().hex[:10]}"
    settings = Settings(  # the default policy: a seven-day retrospective window
        _env_file=None,  # type: ignore[call-arg]
        outbox_dir=tmp_path / "o",
        ledger_dir=tmp_path / "l",
    )
    request = make_request("automated")
    n = Negotiation(client, request, tmp_path / "o")
    try:
        async with build_worker(client, settings, task_queue=task_queue):
            assert (await api.start_negotiation(client, request, task_queue=task_queue)).started
            await n.respond("accept")
            await n.until(lambda s: s.movement == Movement.CLOSURE)
            await n.respond("sign")
            closed = await n.until(lambda s: s.outcome is not None)
            assert closed.retrospective_until is not None  # the workflow waits for the window

            [found] = await _visible(client, 1, task_queue=task_queue)
            assert (found.negotiation_id, found.outcome) == (n.id, Outcome.AGREED)
            assert found.provisional
            assert found.kpis.cycle_time_seconds > 0 and found.kpis.compliance.compliant
            assert found.kpis.stakeholder_satisfaction is None

            # An answer arrives during the window: the provisional satisfaction follows it.
            answer = RetrospectiveAnswer(message_id="r1", participant="ana", satisfaction=4)
            await api.answer_retrospective(client, n.id, answer)
            [found] = (await collect_results(client, task_queue=task_queue)).results
            assert found.provisional and found.kpis.stakeholder_satisfaction == 4
            report = aggregate([found])
            assert (report.overall.count, report.in_retrospective) == (1, 1)
            assert "1 in the retrospective window" in render_table(report)

            # Outside the window asked for, it is left out like a completed one would be.
            assert (
                await collect_results(client, task_queue=task_queue, until=closed.started_at)
                == CollectedResults()
            )

        # No worker is left to answer the query: the report names it and leaves it out.
        impatient = with_deadline(client, timedelta(seconds=1))
        unread = await collect_results(impatient, task_queue=task_queue)
        assert unread.results == []
        [named] = unread.left_out
        assert named.negotiation_id == n.id, named
        assert named.reason.startswith("Temporal did not answer ("), named
    finally:
        await client.get_workflow_handle(n.id).terminate(reason="test done")


async def _collected(client: Client, expected: int, **filters: Any) -> CollectedResults:
    """``collect_results`` once it has read or left out ``expected`` negotiations."""
    loop = asyncio.get_running_loop()
    end = loop.time() + VISIBLE_WITHIN
    while True:
        found = await collect_results(client, **filters)
        if len(found.results) + len(found.left_out) >= expected or loop.time() > end:
            return found
        await asyncio.sleep(0.2)


async def _kpi_page(client: Client, workdir: Path, task_queue: str) -> str:
    """The approver UI's /kpis page for ``task_queue``, as ana sees it."""
    directory = write_directory(workdir / "approvers.yaml")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        task_queue=task_queue,
        ui_secret_file=workdir / "ui-secret",
        ui_audit_log=workdir / "audit.jsonl",
        ui_directory=directory,
    )
    app = create_app(settings, load_directory(directory), client)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        assert (await sign_in(http, "ana")).status_code == 303
        page = await http.get("/kpis")
    assert page.status_code == 200, page.text
    return page.text


async def test_unreadable_negotiations_are_named_and_left_out_of_the_report_and_the_kpi_page(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Beside one agreed negotiation, two that another deployment's worker ran on our task queue:
    one completed (its result does not open with our keyring), one in its retrospective window
    whose result_so_far passes gRPC's 4 MB; then that one has no worker at all."""
    client = dev_env.client
    task_queue = f"report-unreadable-{uuid.uuid4().hex[:10]}"
    request = make_request("automated")
    async with build_worker(client, _settings(tmp_path), task_queue=task_queue):
        assert (await api.start_negotiation(client, request, task_queue=task_queue)).started
        agreed = await _agree(Negotiation(client, request, tmp_path / "o"))
    cli = Fitnest(client, task_queue, tmp_path, tmp_path / "o")
    too_large = None
    try:
        async with foreign_worker(client, task_queue, tmp_path) as foreign:
            undecryptable = await foreign.completed()
            too_large = await foreign.answering_too_much()
            await _collected(client, 3, task_queue=task_queue)  # all three visible
            run = await cli("report", "--json", "--task-queue", task_queue)
            table = await cli("report", "--task-queue", task_queue)
            page = await _kpi_page(client, tmp_path, task_queue)
            found = await collect_results(client, task_queue=task_queue)

        assert run.rc == 0 and "Traceback" not in run.err, str(run)
        report = KpiReport.model_validate_json(run.out)
        assert report == aggregate([agreed], left_out=report.left_out)
        assert report.overall.count == 1 and report.overall.outcomes[Outcome.AGREED] == 1
        reasons = {o.negotiation_id: o.reason for o in report.left_out}
        assert reasons == {
            undecryptable: "a payload cannot be decrypted with this keyring (UnknownKeyError)",
            too_large: "its query failed (GRPC Message too large)",
        }
        assert [r.negotiation_id for r in found.results] == [request.negotiation_id]
        assert found.left_out == report.left_out

        assert table.rc == 0 and table.out.startswith("KPIs of 1 closed negotiation"), str(table)
        assert "2 negotiations could not be read and are left out:" in table.out, str(table)
        assert f"  {undecryptable}: {reasons[undecryptable]}" in table.out.splitlines()

        assert "1 negotiation with an outcome" in page, page
        for negotiation_id, reason in reasons.items():
            assert negotiation_id in page and html.escape(reason) in page, (reason, page)

        # No worker serves the queue any more: the one that answered too much is still named.
        impatient = with_deadline(client, timedelta(seconds=2))
        later = await collect_results(impatient, task_queue=task_queue)
        assert [r.negotiation_id for r in later.results] == [request.negotiation_id]
        now = {o.negotiation_id: o.reason for o in later.left_out}
        assert now[too_large].startswith("Temporal did not answer ("), now
    finally:
        if too_large is not None:
            await client.get_workflow_handle(too_large).terminate(reason="test done")
