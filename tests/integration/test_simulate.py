"""``fitnest simulate`` on negotiations that are already running: it picks up where each stands.

The command runs as a subprocess against the shared dev server, with a real worker in this
process (fixture ``fitnest``). A simulation started again (after Ctrl-C, or on a negotiation a
backend has been talking to) reads each negotiation's status first: it continues the
counterparty's sequence after the last one the negotiation took in, approves the pending
decisions a participant of that negotiation may take (with ``--approve``), and names in one line
each negotiation it cannot play, instead of a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from negotiation.models import NegotiationStatus, Outcome
from starters import client as api
from tests.conftest import own_server_settings
from tests.encryption import worker_settings
from tests.integration.fitnest_cli import REPO, RESPONSES, Fitnest, Run
from tests.workflows.harness import make_request
from workers.client import connect
from workers.devserver import start
from workers.worker import build_worker

pytestmark = pytest.mark.integration

SUPPLIER = "conductor_led_supplier.json"  # conductor_led; deal owner mara, finance fay
RENEWAL = "automated_renewal.json"  # automated: the counterparty alone can close it
APPROVAL_DEMO = REPO / "ui" / "demo" / "renewal_for_approval.json"  # conductor_led, owner ana


def _assert_played_without_stale_messages(s: NegotiationStatus, after: int) -> None:
    """Agreed, every simulated message taken (none stale), numbered after ``after``."""
    assert s.outcome == Outcome.AGREED, s.model_dump_json(indent=1)
    assert s.rejected_messages == [], s.rejected_messages
    assert s.last_sequence > after, s.last_sequence
    simulated = [d for d in s.decisions if (d.message_id or "").startswith("sim-")]
    assert simulated and all(d.verdict.value == "approve" for d in simulated), s.decisions


async def test_simulate_on_a_running_negotiation_approves_as_its_participants_after_its_last_sequence(
    fitnest: Fitnest,
) -> None:
    """A backend sent the counteroffer as message 7; the deal owner has not decided yet."""
    nid, path = fitnest.request(SUPPLIER, "sim-resume")
    await fitnest.ok("start", path)
    counter = json.loads((RESPONSES / "supplier_counter_within_mandate.json").read_text())
    counter.update(sequence=7, message_id=f"backend-{uuid.uuid4().hex[:8]}")
    await fitnest.ok("respond", nid, fitnest.write(f"{nid}-counter.json", counter))
    await fitnest.pending(nid, "deal_owner", "counteroffer")

    run = await fitnest("simulate", nid, "--approve", "--max-seconds", "40", timeout=90)

    assert run.rc == 0 and "Traceback" not in run.err, str(run)
    assert f"{nid}: agreed after 1 rounds" in run.out, str(run)
    s = await fitnest.status(nid)
    _assert_played_without_stale_messages(s, after=7)
    approvers = {d.approver for d in s.decisions if (d.message_id or "").startswith("sim-")}
    assert approvers == {"mara", "fay"}, s.decisions  # the owner, then finance (205,000 EUR)


async def _simulate_until_asked(cli: Fitnest) -> str:
    """``fitnest simulate --request`` for the approval demo, stopped with Ctrl-C once the deal
    owner is asked for the counterparty's counteroffer; returns the negotiation's id."""
    stderr = cli.workdir / f"sim-{uuid.uuid4().hex[:8]}.err"
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *cli.argv,
            "simulate",
            "--request",
            str(APPROVAL_DEMO),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            stdin=asyncio.subprocess.DEVNULL,
            env=cli.env,
            cwd=cli.workdir,
        )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert first.startswith("started "), first + stderr.read_text()
        nid = first.removeprefix("started ").strip()
        await cli.pending(nid, "deal_owner", "counteroffer")
        proc.send_signal(signal.SIGINT)
        rc = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert rc == 130 and "Traceback" not in stderr.read_text(), (rc, stderr.read_text())
    return nid


async def test_simulate_started_again_after_ctrl_c_picks_up_where_the_negotiation_stands(
    fitnest: Fitnest,
) -> None:
    nid = await _simulate_until_asked(fitnest)
    before = await fitnest.status(nid)
    assert before.outcome is None and before.last_sequence >= 1

    run = await fitnest("simulate", nid, "--approve", "--max-seconds", "40", timeout=90)

    assert run.rc == 0 and "Traceback" not in run.err, str(run)
    assert f"{nid}: agreed after" in run.out, str(run)
    s = await fitnest.status(nid)
    _assert_played_without_stale_messages(s, after=before.last_sequence)
    assert "ana" in {d.approver for d in s.decisions}, s.decisions


async def test_simulate_names_closed_and_unknown_negotiations_and_plays_the_others(
    fitnest: Fitnest, dev_env: WorkflowEnvironment
) -> None:
    closed, closed_file = fitnest.request(RENEWAL, "sim-closed")
    ended, ended_file = fitnest.request(RENEWAL, "sim-terminated")
    live, live_file = fitnest.request(RENEWAL, "sim-live")
    for file in (closed_file, ended_file, live_file):
        await fitnest.ok("start", file)
    await fitnest.ok("respond", closed, RESPONSES / "reject.json")
    await fitnest.closed(closed)
    await dev_env.client.get_workflow_handle(ended).terminate(reason="test")
    unknown = f"sim-unknown-{uuid.uuid4().hex[:8]}"

    run = await fitnest("simulate", closed, unknown, ended, live, "--max-seconds", "40", timeout=90)

    assert "Traceback" not in run.err, str(run)
    assert run.rc == 3, str(run)  # the worst of them: a negotiation that does not exist
    assert f"{live}: agreed after" in run.out, str(run)
    lines = run.err.splitlines()
    assert f"{closed}: skipped, it is closed (rejected)" in lines, str(run)
    assert f"{ended}: skipped, it is closed (terminated)" in lines, str(run)
    assert f"{unknown}: skipped, no such negotiation" in lines, str(run)
    assert (await fitnest.status(closed)).rejected_messages == []  # nothing was sent to it


async def test_simulate_of_a_negotiation_no_worker_serves_is_one_line_and_exit_4(
    fitnest: Fitnest, dev_env: WorkflowEnvironment
) -> None:
    request = make_request("automated")
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    assert (await api.start_negotiation(dev_env.client, request, task_queue=queue)).started
    try:
        run: Run = await fitnest("simulate", request.negotiation_id, "--max-seconds", "20")
    finally:
        await dev_env.client.get_workflow_handle(request.negotiation_id).terminate(reason="test")

    assert run.rc == 4, str(run)
    assert "Traceback" not in run.err, str(run)
    [line] = [x for x in run.err.splitlines() if x.startswith(request.negotiation_id)]
    assert line.startswith(f"{request.negotiation_id}: stopped, Temporal did not answer"), line
    assert line.endswith(")") and len(line) < 300, line


async def test_simulate_when_temporal_stops_answering_is_one_line_and_exit_4(
    tmp_path: Path,
) -> None:
    """A dev server of this test's own, frozen with SIGSTOP once the simulated counterparty has
    countered and waits for the deal owner: its next call gives up after the simulation's
    deadline instead of hanging."""
    server = await start(own_server_settings(tmp_path / "temporal"))
    try:
        settings = worker_settings(
            tmp_path, temporal_address=server.settings.address, task_queue="sim-frozen"
        )
        client = await connect(settings)
        cli = Fitnest(client, settings.task_queue, tmp_path, tmp_path / "outbox")
        nid, path = cli.request(SUPPLIER, "sim-frozen")
        async with build_worker(client, settings, task_queue=settings.task_queue):
            await cli.ok("start", path)
            simulation = asyncio.create_task(cli("simulate", nid, "--max-seconds", "120"))
            await cli.until(nid, lambda s: s.last_sequence == 1, "countered by the simulation")
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                run = await asyncio.wait_for(simulation, 60)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
    finally:
        server.stop()

    assert run.rc == 4 and "Traceback" not in run.err, str(run)
    [line] = [x for x in run.err.splitlines() if x.startswith(nid)]
    assert line.startswith(f"{nid}: stopped, Temporal did not answer"), line
