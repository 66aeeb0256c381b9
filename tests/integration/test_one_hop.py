"""One hop: a message reaches the movement that plays it; the races at a movement's end.

On the shared dev server, with this module's own worker (and a second task queue whose worker is
started late, for the case where no movement plays yet). Every case checks the same promise:
whatever a caller sends is taken once, in sequence, or answered (or recorded) with why not.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from negotiation.models import CounterpartyAction, CounterpartyResponse, Outcome
from starters import client as api
from tests.encryption import worker_settings
from tests.workflows.harness import Negotiation, make_request, terms
from workers.worker import build_worker
from workflows.protocol import COUNTERPARTY_SIGNAL

pytestmark = pytest.mark.integration

COUNTER = terms(50000, 10, 45)


@dataclass
class Site:
    client: Client
    task_queue: str
    outbox: Path
    workdir: Path

    async def start(
        self, playbook: str, *, task_queue: str | None = None, **overrides: Any
    ) -> Negotiation:
        n = Negotiation(self.client, make_request(playbook, **overrides), self.outbox)
        receipt = await api.start_negotiation(
            self.client, n.request, task_queue=task_queue or self.task_queue
        )
        assert receipt.started
        return n


@pytest.fixture(scope="module")
async def site(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    workdir = tmp_path_factory.mktemp("one-hop")
    task_queue = f"hop-{uuid.uuid4().hex[:10]}"
    async with build_worker(dev_env.client, worker_settings(workdir, task_queue=task_queue)):
        yield Site(dev_env.client, task_queue, workdir / "outbox", workdir)


async def _events(client: Client, workflow_id: str) -> list[Any]:
    return [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]


def _response(
    n: Negotiation, action: str = "counter", offer: Any = COUNTER, **kw: Any
) -> CounterpartyResponse:
    n.sequence += 1
    return CounterpartyResponse(
        message_id=kw.pop("message_id", f"hop-{uuid.uuid4().hex[:8]}"),
        sequence=kw.pop("sequence", n.sequence),
        action=CounterpartyAction(action),
        terms=offer,
        **kw,
    )


async def test_a_response_goes_to_the_movement_that_plays_not_through_the_negotiation(site):
    n = await site.start("automated")
    await n.until(lambda s: s.our_terms is not None and s.movement.value == "opening")
    await n.respond("counter", COUNTER)
    status = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    assert status.their_terms is not None and status.their_terms.terms == COUNTER
    assert status.playing == f"{n.id}/development"
    parent = await _events(site.client, n.id)
    signalled = [
        e for e in parent if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signalled == []  # nothing was relayed: the opening movement took it itself
    opening = await _events(site.client, f"{n.id}/opening")
    names = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in opening
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert names == [COUNTERPARTY_SIGNAL]


async def test_the_update_answers_at_once_taken_or_why_not(site):
    n = await site.start("automated")
    await n.until(lambda s: s.our_terms is not None)
    first = _response(n)
    receipt = await api.respond(site.client, n.id, first)
    assert receipt.message_id == first.message_id and not receipt.kept_for_later
    assert await api.respond(site.client, n.id, first) == receipt  # a retry: the same receipt
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    with pytest.raises(api.ResponseRefused) as stale:
        await api.respond(site.client, n.id, _response(n, sequence=1))
    assert stale.value.code == "stale"
    with pytest.raises(api.ResponseRefused) as reused:
        await api.respond(site.client, n.id, first.model_copy(update={"sequence": 40}))
    assert reused.value.code == "reused"
    with pytest.raises(api.ResponseRefused) as impossible:
        await api.respond(site.client, n.id, _response(n, "sign", None))
    assert impossible.value.code == "not_possible"
    await api.respond(site.client, n.id, _response(n, "withdraw", None))
    await n.until(lambda s: s.outcome == Outcome.WITHDRAWN)
    with pytest.raises(api.ResponseRefused) as closed:  # in its retrospective window
        await api.respond(site.client, n.id, _response(n))
    assert closed.value.code == "closed"
    # Refused to the caller, not recorded: only fire-and-forget signals are recorded.
    assert (await n.status()).rejected_messages == []


async def test_a_signal_to_a_movement_that_has_ended_fails_so_the_caller_looks_again(site):
    """What the client relies on at a movement's end: the server refuses a message to a
    completed movement (NOT_FOUND), so nothing is taken by a run that will not act on it."""
    n = await site.start("automated")
    await n.respond("counter", COUNTER)
    await n.until(lambda s: s.movement.value == "development" and s.our_terms.version == 3)
    with pytest.raises(RPCError) as ended:
        await site.client.get_workflow_handle(f"{n.id}/opening").signal(
            COUNTERPARTY_SIGNAL, _response(n)
        )
    assert ended.value.status == RPCStatusCode.NOT_FOUND
    await n.respond("counter", terms(51000, 10, 45))  # the client finds development
    await n.until(lambda s: s.our_terms.version == 5)


async def test_a_message_that_reaches_the_negotiation_while_a_movement_plays_is_forwarded_once(
    site,
):
    """A caller that looked when no movement played sends to the negotiation itself: it forwards
    the message, sealed, to the movement that plays, which takes it once."""
    n = await site.start("automated")
    await n.respond("counter", COUNTER)
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    late = _response(n, offer=terms(51000, 10, 45))
    await site.client.get_workflow_handle(n.id).signal(COUNTERPARTY_SIGNAL, late)
    await site.client.get_workflow_handle(n.id).signal(COUNTERPARTY_SIGNAL, late)  # and again
    status = await n.until(lambda s: s.our_terms.version == 5)
    assert [o.version for o in status.offers] == [1, 2, 3, 4, 5]
    assert status.rejected_messages == []
    parent = await _events(site.client, n.id)
    forwarded = [
        e
        for e in parent
        if e.event_type == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    ]
    assert forwarded  # forwarded (together, or one by one); the repeat was taken as a repeat


async def test_messages_sent_before_any_movement_plays_are_held_and_taken_in_order(site, dev_env):
    """No worker yet: no movement can play. The caller leaves its messages with the negotiation,
    which hands them, in order, to the movement that takes them when one starts."""
    late_queue = f"hop-late-{uuid.uuid4().hex[:8]}"
    n = await site.start("automated", task_queue=late_queue)
    first, second = _response(n), _response(n, offer=terms(51000, 10, 45))
    await api.send_response(site.client, n.id, first)
    await api.send_response(site.client, n.id, second)
    async with build_worker(
        dev_env.client, worker_settings(site.workdir / "late", task_queue=late_queue)
    ):
        status = await n.until(lambda s: s.our_terms is not None and s.our_terms.version >= 5, 40)
    assert [o.party.value for o in status.offers[:5]] == ["us", "them", "us", "them", "us"]
    assert status.offers[1].terms == COUNTER and status.offers[3].terms == terms(51000, 10, 45)
    assert status.rejected_messages == []


async def _runs(client: Client, negotiation_id: str) -> tuple[int, int]:
    """Runs of the negotiation (following continue-as-new back) and development runs started."""
    parents = developments = 0
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(negotiation_id, run_id=run_id)
        events = [e async for e in handle.fetch_history_events()]
        parents += 1
        developments += sum(
            1
            for e in events
            if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
            and e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id.endswith(
                "/development"
            )
        )
        previous = events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not previous:
            return parents, developments
        run_id = previous


async def test_rounds_across_fresh_development_runs_and_continue_as_new_lose_nothing(site, dev_env):
    """A small history budget makes development hand back every few rounds and the negotiation
    continue-as-new: responses sent meanwhile, without waiting, are each taken once, in order."""
    small = site.workdir / "small-budget.yaml"
    small.write_text("history_budget: 50\nretrospective_days: 0\n")
    queue = f"hop-small-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(site.workdir / "small", task_queue=queue, policy_file=small)
    async with build_worker(dev_env.client, settings):
        n = await site.start("automated", task_queue=queue, mandate__max_rounds=80)
        await n.until(lambda s: s.our_terms is not None)
        rounds = 30
        for i in range(rounds):
            await n.respond("counter", COUNTER)
            if i % 5 == 4:  # let it answer now and then; in between, responses queue up
                await n.until(lambda s, i=i: s.round == i + 1, 60)
        # Our answer to the last round shows once it is sent.
        status = await n.until(
            lambda s: s.round == rounds and s.our_terms.version == 2 * rounds + 1, 60
        )
        parents, developments = await _runs(site.client, n.id)
    assert status.rejected_messages == []
    assert [o.version for o in status.offers] == list(range(1, 2 * rounds + 2))
    assert developments > 3 and parents > 1, (developments, parents)


async def test_a_response_that_meets_a_completing_movement_travels_on_with_its_state(site):
    """The opening completes as soon as it takes the first response. A second one sent straight
    behind it meets the opening while it completes (the server makes it take the signal before it
    may complete, and it hands it on with the state) or after (the signal fails, and the caller
    finds development): either way development plays both, once each, in order."""
    n = await site.start("automated")
    await n.until(lambda s: s.our_terms is not None and s.movement.value == "opening")
    first, second = _response(n), _response(n, offer=terms(51000, 10, 45))
    await api.send_response(site.client, n.id, first)
    try:
        await site.client.get_workflow_handle(f"{n.id}/opening").signal(COUNTERPARTY_SIGNAL, second)
    except RPCError as ended:
        assert ended.status == RPCStatusCode.NOT_FOUND
        await api.send_response(site.client, n.id, second)
    status = await n.until(lambda s: s.our_terms is not None and s.our_terms.version >= 5)
    assert [o.terms for o in status.offers if o.party.value == "them"] == [COUNTER, second.terms]
    assert status.rejected_messages == []
