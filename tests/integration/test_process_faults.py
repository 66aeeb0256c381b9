"""Faults with real processes: workers killed with SIGKILL, the dev server stopped and started again.

Every scenario plays a scripted negotiation with a worker run as ``python -m workers.worker``, and
an undisturbed run of the same script is the reference: after the fault the negotiation ends with
the same outcome, and a real SMTP server received each notification exactly once.

The scenarios are slow (a worker killed mid-activity is noticed only at a timeout, a deadline is
waited for in real time), so they all start at once when the module's first test asks for them,
and each test waits for its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.reviews import ReviewInput
from negotiation.models import DecisionKind, Movement, NegotiationResult, Outcome, Role
from negotiation.policy import Policy
from negotiation.reviews import LegalFindings
from starters import client as api
from tests.conftest import own_server_settings
from tests.encryption import TEST_KEY_FILE
from tests.integration.processes import WorkerProcess, smtp_server
from tests.workflows.harness import Negotiation, make_request, terms, worker_replacing
from workers import devserver
from workers.client import connect
from workers.settings import Settings
from workflows import search_attributes as sa

pytestmark = pytest.mark.integration

#: Who approves for each role in the harness's team.
APPROVERS = {"deal_owner": "ana", "legal": "lee", "finance": "fay", "executive": "eve"}
#: A worker killed mid-notification is noticed at the heartbeat timeout (10 s) and retried after
#: backoff; a loaded machine takes longer. Generous: it bounds a hang, it does not time anything.
SCENARIO_SECONDS = 150.0

Fault = Callable[[str], Awaitable[None]]


async def no_fault(_: str) -> None:
    """The undisturbed run."""


@dataclass
class Stage:
    """One negotiation on its own task queue, worker process, SMTP server and ledger."""

    n: Negotiation
    worker: WorkerProcess
    mail: Any
    script: str

    async def until(self, check: Callable[[Any], bool]) -> Any:
        return await self.n.until(check, timeout=SCENARIO_SECONDS)


async def play_automated(stage: Stage, fault: Fault) -> NegotiationResult:
    """Opening offer, one counter answered by the strategy, acceptance, signatures."""
    n = stage.n
    await fault("started")
    await stage.until(lambda s: s.our_terms is not None)
    await n.respond("counter", terms(50000, 10, 45))
    await fault("countered")
    await stage.until(lambda s: s.our_terms.version == 3)
    await n.respond("accept")
    await fault("accepted")
    await stage.until(lambda s: s.movement == Movement.CLOSURE)
    await n.respond("sign")
    return await asyncio.wait_for(api.get_result(n.client, n.id), SCENARIO_SECONDS)


async def play_conductor(stage: Stage, fault: Fault) -> NegotiationResult:
    """A counter the deal owner approves, the sign-offs and our signature by people, their signature."""
    n = stage.n
    await fault("started")
    await n.respond("counter", terms(50000, 10, 45))
    await n.pending("deal_owner", timeout=SCENARIO_SECONDS)
    await fault("pending")

    def signed(s: Any) -> bool:
        return any(d.kind == DecisionKind.SIGNATURE for d in s.decisions)

    while True:  # whoever is asked next approves, until our signature is given
        s = await stage.until(lambda s: s.pending_decisions or s.outcome is not None or signed(s))
        if s.outcome is not None or signed(s):
            break
        for p in s.pending_decisions:
            await n.decide(p.request_id, APPROVERS[p.role.value])
    await n.respond("sign")
    return await asyncio.wait_for(api.get_result(n.client, n.id), SCENARIO_SECONDS)


async def play_reminded(stage: Stage, fault: Fault) -> NegotiationResult:
    """Silent until reminded, then the counterparty accepts the opening offer and signs."""
    n = stage.n
    await stage.until(lambda s: s.our_terms is not None)
    await fault("offered")
    await stage.until(lambda s: bool(s.reminders))
    await n.respond("accept")
    await stage.until(lambda s: s.movement == Movement.CLOSURE)
    await n.respond("sign")
    return await asyncio.wait_for(api.get_result(n.client, n.id), SCENARIO_SECONDS)


async def play_silent(stage: Stage, fault: Fault) -> NegotiationResult:
    """The counterparty never answers our opening offer."""
    await stage.until(lambda s: s.our_terms is not None)
    await fault("offered")
    return await asyncio.wait_for(api.get_result(stage.n.client, stage.n.id), SCENARIO_SECONDS)


#: Each script and the playbook it plays.
SCRIPTS = {
    "automated": (play_automated, "automated"),
    "conductor_led": (play_conductor, "conductor_led"),
    "silent": (play_silent, "automated"),
    "reminded": (play_reminded, "automated"),
}


@dataclass
class Played:
    """What a scenario ended with: the result and how often each notification arrived."""

    result: NegotiationResult
    mail: Counter[str]
    log: list[str] = field(default_factory=list)


def policy_file(folder: Path, **policy: Any) -> Path:
    """No retrospective window: the workflow completes at its outcome, so results can be awaited."""
    path = folder / "policy.json"
    path.write_text(json.dumps({"retrospective_days": 0, **policy}))
    return path


async def play(
    address: str,
    folder: Path,
    script: str,
    fault: Callable[[Stage, str], Awaitable[None]] | None = None,
    *,
    policy: dict[str, Any] | None = None,
    **request: Any,
) -> Played:
    """Play ``script`` with a worker process, calling ``fault`` at the script's fault points;
    ``policy`` adds to the policy file, ``request`` overrides fields of the request."""
    folder.mkdir(parents=True, exist_ok=True)
    with smtp_server() as (port, mail):
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            temporal_address=address,
            key_file=TEST_KEY_FILE,
            task_queue=f"pf-{uuid.uuid4().hex[:10]}",
            smtp_host="127.0.0.1",
            smtp_port=port,
            ledger_dir=folder / "ledger",
            policy_file=policy_file(folder, **(policy or {})),
            # No metrics endpoint: these workers need none, and a port picked by free_port() could
            # be taken by another scenario's process before the worker binds it.
            metrics_port=0,
        )
        client = await connect(settings)
        play_script, playbook = SCRIPTS[script]
        negotiation = Negotiation(client, make_request(playbook, **request), folder / "no-outbox")
        stage = Stage(negotiation, WorkerProcess(settings, folder / "worker.log"), mail, script)
        await stage.worker.start()
        try:
            receipt = await api.start_negotiation(
                client, negotiation.request, task_queue=settings.task_queue
            )
            assert receipt.started

            async def at(point: str) -> None:
                if fault is not None:
                    await fault(stage, point)

            result = await play_script(stage, at)
        finally:
            await stage.worker.stop()
        return Played(result, mail.keys(negotiation.id))


# --- the faults ---------------------------------------------------------------------------------


async def kill_mid_notification(stage: Stage, point: str) -> None:
    """SIGKILL while the role cards are being mailed: the SMTP server holds every delivery."""
    if point != "started":
        return
    stage.mail.gate.clear()
    await asyncio.wait_for(asyncio.to_thread(stage.mail.stalled.wait), SCENARIO_SECONDS)
    await stage.worker.kill()
    stage.mail.gate.set()
    await stage.worker.start()


async def quiet(stage: Stage) -> None:
    """Wait until no notification is being sent: the ledger holds a lock file per send in flight.

    A worker killed after the mail server accepted a message and before the ledger recorded it
    sends it again (the ledger's documented window; the deterministic Message-ID lets receivers
    drop the copy). The kills below land outside that window on purpose: either with nothing in
    flight, or with the delivery held before the server accepts it.
    """
    ledger = stage.worker.settings.ledger_dir
    for _ in range(600):
        if not any(ledger.glob("*.lock")):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"notifications still in flight: {sorted(ledger.glob('*.lock'))}")


async def kill_between_movements(stage: Stage, point: str) -> None:
    """SIGKILL as the acceptance ends the development and closure begins: the first message of
    the closure is held at the mail server when the worker dies."""
    if point == "countered":
        await stage.until(lambda s: s.our_terms.version == 3)
        await quiet(stage)
        stage.mail.gate.clear()  # from now on every delivery hangs before it is accepted
    if point == "accepted":
        await asyncio.wait_for(asyncio.to_thread(stage.mail.stalled.wait), SCENARIO_SECONDS)
        await stage.worker.kill()
        stage.mail.gate.set()
        await stage.worker.start()


async def kill_while_a_decision_is_pending(stage: Stage, point: str) -> None:
    """SIGKILL while the deal owner's decision is pending; she decides while no worker runs."""
    if point != "pending":
        return
    pending = (await stage.n.status()).pending_decisions  # a query needs a worker: ask first
    for _ in range(600):  # the decision request has gone out
        if stage.mail.keys(stage.n.id)[pending[0].request_id]:
            break
        await asyncio.sleep(0.05)
    await quiet(stage)
    await stage.worker.kill()
    # The update waits for a worker to answer it: it is accepted once one is back.
    decision = asyncio.create_task(stage.n.decide(pending[0].request_id, "ana"))
    await asyncio.sleep(0.5)
    assert not decision.done()
    await stage.worker.start()
    receipt = await asyncio.wait_for(decision, SCENARIO_SECONDS)
    assert receipt.approver == "ana"


async def restart_the_server(folder: Path, script: str = "automated") -> tuple[Played, list[str]]:
    """The dev server on a SQLite file stops twice mid-negotiation and starts again on the file."""
    settings = own_server_settings(folder / "server")
    server = await devserver.start(settings)
    seen: list[str] = []

    async def bounce(stage: Stage, point: str) -> None:
        # Right after a message is sent, before the worker has surely taken it: a message held
        # only in memory would be lost.
        nonlocal server
        if point in ("countered", "accepted"):
            await asyncio.to_thread(server.stop)
            seen.append(f"stopped at {point}")
            server = await devserver.start(settings)

    try:
        played = await play(settings.address, folder / "run", script, bounce)
    finally:
        await asyncio.to_thread(server.stop)
    return played, seen


async def down_past_the_deadline(address: str, folder: Path) -> Played:
    """No worker while the deadline passes: the expiry timer fires when a worker is back."""
    # Far enough for the opening offer to go out first on a loaded machine, near enough to wait.
    deadline = datetime.now(UTC) + timedelta(seconds=30)

    async def away(stage: Stage, point: str) -> None:
        await stage.worker.kill()
        await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 1)
        # Nobody has run the timer yet (the server's record; a query would need a worker).
        desc = await stage.n.client.get_workflow_handle(stage.n.id).describe()
        assert desc.typed_search_attributes.get(sa.OUTCOME) is None
        await stage.worker.start()

    return await play(address, folder, "silent", away, mandate__deadline=deadline.isoformat())


#: The counterparty's reminder in the reminder scenario: after 20 seconds of silence.
REMINDER = timedelta(seconds=20)


async def down_past_the_reminder(address: str, folder: Path) -> tuple[Played, datetime]:
    """No worker when the counterparty's reminder falls due: it goes out once a worker is back.

    Returns the scenario and the time the reminder fell due.
    """
    due: list[datetime] = []

    async def away(stage: Stage, point: str) -> None:
        offered = (await stage.n.status()).our_terms  # a query needs a worker: ask first
        await quiet(stage)
        await stage.worker.kill()
        due.append(offered.at + REMINDER)
        await asyncio.sleep(max(0.0, (due[0] - datetime.now(UTC)).total_seconds()) + 2)
        assert not any("counterparty-reminder" in key for key in stage.mail.keys(stage.n.id))
        await stage.worker.start()

    days = REMINDER / timedelta(days=1)
    played = await play(
        address, folder, "reminded", away, policy={"counterparty_reminder_days": days}
    )
    return played, due[0]


#: How long an approver has in the overdue-decision scenario: reminded at 20 s, escalated at 40 s.
DECISION_DUE = timedelta(seconds=20)


async def down_past_a_decision(address: str, folder: Path) -> tuple[Played, str]:
    """No worker while the deal owner's decision falls due and then overdue: when a worker is
    back, the reminder and the escalation both go out, in that order, once each.

    Returns the scenario and the id of the request that fell overdue.
    """
    asked: list[str] = []

    async def away(stage: Stage, point: str) -> None:
        if point != "pending":
            return
        [pending] = (await stage.n.status()).pending_decisions  # a query needs a worker
        asked.append(pending.request_id)
        for _ in range(600):  # the decision request has gone out
            if stage.mail.keys(stage.n.id)[pending.request_id]:
                break
            await asyncio.sleep(0.05)
        await quiet(stage)
        await stage.worker.kill()
        assert pending.created_at is not None
        overdue = pending.created_at + 2 * DECISION_DUE
        await asyncio.sleep(max(0.0, (overdue - datetime.now(UTC)).total_seconds()) + 2)
        await stage.worker.start()
        # Nobody answers until the escalation is in: the deal owner could still decide while the
        # reminder is being sent, and the script would then never see the escalation.
        await stage.until(lambda s: any(e.request_id == pending.request_id for e in s.escalations))

    hours = DECISION_DUE / timedelta(hours=1)
    tiers = [
        {**tier, "decision_due_hours": hours}
        for tier in Policy().model_dump(mode="json")["value_tiers"]
    ]
    played = await play(address, folder, "conductor_led", away, policy={"value_tiers": tiers})
    return played, asked[0]


class HangingReview:
    """A legal review service that never answers, behind the real activity's name and signature."""

    def __init__(self) -> None:
        self.attempts = 0

    @activity.defn(name="legal_review")
    async def legal_review(self, inp: ReviewInput) -> LegalFindings:
        self.attempts += 1
        await asyncio.Event().wait()  # cancelled when the worker stops
        raise AssertionError("unreachable")


async def review_hangs(client: Client, folder: Path) -> tuple[Any, Any, int]:
    """The legal review hangs: the attempt times out (30 s) and is tried again, and the
    negotiation waits in closure meanwhile. (After an hour of attempts a person is asked, as
    tests/workflows/test_faults_in_time.py shows for a service that fails.)"""
    service = HangingReview()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        task_queue=f"pf-{uuid.uuid4().hex[:10]}",
        outbox_dir=folder / "outbox",
        ledger_dir=folder / "ledger",
    )
    n = Negotiation(client, make_request("automated"), folder / "outbox")
    async with worker_replacing(client, settings, {"legal_review": service.legal_review}):
        assert (
            await api.start_negotiation(client, n.request, task_queue=settings.task_queue)
        ).started
        await n.respond("accept")
        await n.until(lambda s: s.movement == Movement.CLOSURE, timeout=SCENARIO_SECONDS)
        loop = asyncio.get_running_loop()
        end = loop.time() + SCENARIO_SECONDS
        while service.attempts < 2 and loop.time() < end:
            await asyncio.sleep(0.2)
        closure = await client.get_workflow_handle(f"{n.id}/closure").describe()
        status = await n.status()
        await client.get_workflow_handle(n.id).terminate(reason="the hang is proved")
    return closure.raw_description.pending_activities, status, service.attempts


# --- the scenarios run together -------------------------------------------------------------------


@pytest.fixture(scope="module")
async def scenarios(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, asyncio.Task[Any]]]:
    """Every scenario of this module, started at once; each test awaits its own."""
    root = tmp_path_factory.mktemp("process-faults")
    address = dev_env.client.service_client.config.target_host
    runs: dict[str, Coroutine[Any, Any, Any]] = {
        "automated": play(address, root / "automated", "automated"),
        "conductor_led": play(address, root / "conductor", "conductor_led"),
        "mid_notification": play(address, root / "mid", "automated", kill_mid_notification),
        "between_movements": play(address, root / "between", "automated", kill_between_movements),
        "decision_pending": play(
            address, root / "pending", "conductor_led", kill_while_a_decision_is_pending
        ),
        "server_restart": restart_the_server(root / "server"),
        "deadline": down_past_the_deadline(address, root / "deadline"),
        "reminder": down_past_the_reminder(address, root / "reminder"),
        "overdue": down_past_a_decision(address, root / "overdue"),
        "review_hangs": review_hangs(dev_env.client, root / "hang"),
    }
    tasks = {name: asyncio.create_task(run, name=name) for name, run in runs.items()}
    yield tasks
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)


def deal(played: Played) -> tuple[Any, ...]:
    """What must not depend on faults: outcome, agreed version and terms, who decided what."""
    agreed = played.result.agreed_terms
    decided = [(d.kind, d.role, d.verdict) for d in played.result.status.decisions]
    offers = [(o.version, o.party, o.terms) for o in played.result.status.offers]
    return played.result.outcome, agreed and (agreed.version, agreed.terms), decided, offers


def exactly_once(played: Played) -> None:
    twice = {key: count for key, count in played.mail.items() if count != 1}
    assert not twice, f"notifications sent more than once: {twice}"


async def _both(
    scenarios: dict[str, asyncio.Task[Any]], name: str, reference: str
) -> tuple[Played, Played]:
    return await scenarios[name], await scenarios[reference]


async def test_undisturbed_runs_agree_and_mail_each_notification_once(scenarios) -> None:
    for name in ("automated", "conductor_led"):
        played: Played = await scenarios[name]
        assert played.result.outcome == Outcome.AGREED
        assert played.mail and all(count == 1 for count in played.mail.values())


async def test_a_worker_killed_mid_notification_ends_the_same_and_mails_each_once(
    scenarios,
) -> None:
    played, reference = await _both(scenarios, "mid_notification", "automated")
    assert deal(played) == deal(reference)
    exactly_once(played)
    assert set(played.mail) == set(reference.mail)


async def test_a_worker_killed_between_movements_ends_the_same_and_mails_each_once(
    scenarios,
) -> None:
    played, reference = await _both(scenarios, "between_movements", "automated")
    assert deal(played) == deal(reference)
    exactly_once(played)
    assert set(played.mail) == set(reference.mail)


async def test_a_worker_killed_while_a_decision_is_pending_ends_the_same_and_mails_each_once(
    scenarios,
) -> None:
    played, reference = await _both(scenarios, "decision_pending", "conductor_led")
    assert deal(played) == deal(reference)
    exactly_once(played)
    assert set(played.mail) == set(reference.mail)


async def test_a_server_restarted_on_its_file_loses_no_message_and_mails_each_once(
    scenarios,
) -> None:
    played, stops = await scenarios["server_restart"]
    reference: Played = await scenarios["automated"]
    assert stops == ["stopped at countered", "stopped at accepted"]
    assert deal(played) == deal(reference)
    status = played.result.status
    # Every message sent just before a stop was taken (the offers are the reference's).
    assert status.rejected_messages == []
    exactly_once(played)
    assert set(played.mail) == set(reference.mail)


async def test_a_deadline_passed_while_no_worker_ran_expires_once_the_worker_is_back(
    scenarios,
) -> None:
    played: Played = await scenarios["deadline"]
    assert played.result.outcome == Outcome.EXPIRED
    assert "deadline" in (played.result.outcome_reason or "")
    exactly_once(played)


async def test_a_reminder_due_while_no_worker_ran_goes_out_once_when_the_worker_is_back(
    scenarios,
) -> None:
    played, due = await scenarios["reminder"]
    assert played.result.outcome == Outcome.AGREED
    [reminder] = played.result.status.reminders
    assert reminder.to == "counterparty"
    assert reminder.at > due  # late, since no worker ran at the due time, but sent
    exactly_once(played)
    assert len([key for key in played.mail if "counterparty-reminder" in key]) == 1


async def test_a_decision_overdue_while_no_worker_ran_is_reminded_then_escalated_once_each(
    scenarios, dev_env: WorkflowEnvironment
) -> None:
    played, request_id = await scenarios["overdue"]
    status = played.result.status
    assert played.result.outcome == Outcome.AGREED
    [reminded] = [r for r in status.reminders if r.request_id == request_id]
    [escalated] = [e for e in status.escalations if e.request_id == request_id]
    assert (reminded.to, escalated.from_role, escalated.to_role) == (
        "deal_owner",
        Role.DEAL_OWNER,
        Role.EXECUTIVE,
    )
    assert reminded.at <= escalated.at
    # The executive, asked at the escalation, took the decision.
    [decided] = [d for d in status.decisions if d.request_id == request_id]
    assert decided.approver == "eve"
    exactly_once(played)
    assert played.mail[f"{request_id}/reminder/deal_owner"] == 1
    # The escalation's time had passed when the worker came back: it was not waited for (no
    # timer of zero length, which Python 3.12's asyncio would start for a wait already due).
    handle = dev_env.client.get_workflow_handle(f"{played.result.negotiation_id}/development")
    timers = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert timers and all(t.total_seconds() > 0 for t in timers), timers


async def test_a_hanging_review_times_out_and_is_retried_while_the_negotiation_waits(
    scenarios,
) -> None:
    pending, status, attempts = await scenarios["review_hangs"]
    assert attempts == 2
    [review] = [a for a in pending if a.activity_type.name == "legal_review"]
    assert review.attempt == 2
    timeout = review.last_failure.timeout_failure_info.timeout_type
    assert timeout == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
    assert status.outcome is None and status.movement == Movement.CLOSURE
