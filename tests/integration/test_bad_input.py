"""A corpus of bad input: each case gets a clear error at the edge or a recorded rejection.

Every case is a test of its own, but they run as one batch on a few shared negotiations (the
dev server, one worker): the batch sends each case in turn and keeps what it raised, then sends a
good message to every negotiation. Each test then checks its case's own assertions, that the
negotiation it hit still moved on with the good message, and that no workflow task failed in any
of that negotiation's workflows: no case may put a workflow into a task-failure loop.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from negotiation.models import (
    CounterpartyResponse,
    HumanDecision,
    Movement,
    NegotiationRequest,
    RetrospectiveAnswer,
)
from starters import client as api
from tests.integration.fitnest_cli import Fitnest
from tests.workflows.harness import Negotiation, make_request, terms
from workers.settings import Settings
from workers.worker import build_worker

pytestmark = pytest.mark.integration

COUNTER = terms(50000, 10, 45)


@dataclass
class Ctx:
    """The negotiations the corpus is sent to, and the command line."""

    client: Client
    cli: Fitnest
    dev: Negotiation  # automated, in development after one round
    owner: Negotiation  # conductor-led, the deal owner's decision pending
    closed: Negotiation  # rejected: has its outcome, open for the retrospective
    ended: Negotiation  # terminated: its workflow is closed
    flood: Negotiation  # automated, in development, for the flood
    tier: Negotiation  # conductor-led at 600k: finance must approve 500k
    task_queue: str
    pending_id: str  # the owner negotiation's pending decision request
    finance_id: str  # the tier negotiation's pending finance request
    started: list[str] = field(default_factory=list)

    async def rejected(
        self, n: Negotiation, message_id: str | None, reason: str, kind: str = ""
    ) -> None:
        """Wait until ``n`` records the rejection, then check it is recorded exactly once."""

        def matches(s: Any) -> list[Any]:
            return [
                r
                for r in s.rejected_messages
                if r.message_id == message_id
                and re.search(reason, r.reason)
                and (not kind or r.kind == kind)
            ]

        s = await n.until(lambda s: bool(matches(s)))
        await asyncio.sleep(0.1)  # a second copy, if any, would be folded in by now
        s = await n.status()
        assert len(matches(s)) == 1, s.rejected_messages

    async def signal(self, n: Negotiation, name: str, payload: Any) -> None:
        await self.client.get_workflow_handle(n.id).signal(name, payload)


Case = Callable[[Ctx], Awaitable[None]]
CASES: dict[str, tuple[str | None, Case]] = {}


def case(target: str | None) -> Callable[[Case], Case]:
    """Register a corpus case: ``target`` names the negotiation it is sent to (None: the edge)."""

    def register(fn: Case) -> Case:
        CASES[fn.__name__.removeprefix("case_")] = (target, fn)
        return fn

    return register


def raises(kind: type[BaseException], pattern: str) -> Any:
    return pytest.raises(kind, match=pattern)


def request_data(**changes: Any) -> dict[str, Any]:
    data = make_request("automated").model_dump(mode="json")
    data.update(changes)
    return data


def decision(ctx: Ctx, message_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "request_id": ctx.pending_id,
        "approver": "ana",
        "verdict": "approve",
        **fields,
    }


# --- start requests -----------------------------------------------------------------------------


@case(None)
async def case_start_file_not_json(ctx: Ctx) -> None:
    run = await ctx.cli("start", ctx.cli.write("broken.json", '{"negotiation_id": "x",'))
    assert run.rc == 2 and "is not valid JSON or YAML" in run.err, str(run)


@case(None)
async def case_start_file_a_json_array(ctx: Ctx) -> None:
    run = await ctx.cli("start", ctx.cli.write("array.json", "[1, 2, 3]"))
    assert run.rc == 2 and "is not a valid NegotiationRequest" in run.err, str(run)


@case(None)
async def case_start_file_oversized(ctx: Ctx) -> None:
    huge = request_data()
    huge["mandate"]["acceptable_clauses"] = [f"c{i:06d}-{'x' * 56}" for i in range(6000)]
    run = await ctx.cli("start", ctx.cli.write("huge.json", huge))
    assert run.rc == 2 and "too large" in run.err and "at most" in run.err, str(run)


@case(None)
async def case_start_too_many_participants(ctx: Ctx) -> None:
    team = [
        {"name": f"p{i}", "role": "finance", "email": f"p{i}@fitnest.example"} for i in range(101)
    ]
    with raises(ValidationError, "participants\n.*at most 100 items"):
        NegotiationRequest.model_validate(request_data(participants=team))


@case(None)
async def case_start_missing_negotiation_id(ctx: Ctx) -> None:
    data = request_data()
    del data["negotiation_id"]
    with raises(ValidationError, "negotiation_id\n  Field required"):
        NegotiationRequest.model_validate(data)


@case(None)
async def case_start_id_that_is_no_identifier(ctx: Ctx) -> None:
    with raises(ValidationError, "must be 2-128 characters of lower-case letters"):
        NegotiationRequest.model_validate(request_data(negotiation_id="Deal 60k EUR/renewal"))


@case(None)
async def case_start_unknown_field(ctx: Ctx) -> None:
    with raises(ValidationError, "secret_floor\n  Extra inputs are not permitted"):
        NegotiationRequest.model_validate(request_data(secret_floor="40000"))


@case(None)
async def case_start_value_of_the_wrong_type(ctx: Ctx) -> None:
    data = request_data()
    data["opening_terms"]["total_contract_value"] = "a lot"
    with raises(
        ValidationError, "opening_terms.total_contract_value\n  Input should be a valid decimal"
    ):
        NegotiationRequest.model_validate(data)


@case(None)
async def case_start_deadline_without_timezone(ctx: Ctx) -> None:
    data = request_data()
    data["mandate"]["deadline"] = "2031-03-01T17:00:00"
    with raises(ValidationError, "deadline must carry a timezone"):
        NegotiationRequest.model_validate(data)


@case(None)
async def case_start_deadline_already_past(ctx: Ctx) -> None:
    request = make_request("automated", now=datetime.now(UTC) - timedelta(days=100))
    with raises(ValueError, "is already past"):
        await api.start_negotiation(ctx.client, request, task_queue=ctx.task_queue)
    with raises(api.NegotiationNotFound, "no negotiation"):
        await api.get_status(ctx.client, request.negotiation_id)


@case(None)
async def case_start_the_same_negotiation_again(ctx: Ctx) -> None:
    again = await api.start_negotiation(ctx.client, ctx.dev.request, task_queue=ctx.task_queue)
    assert not again.started


@case("raw")
async def case_start_bypassing_the_client_with_a_malformed_input(ctx: Ctx) -> None:
    """Past the edge, a malformed input fails the workflow at once, instead of retrying its task."""
    workflow_id = f"bad-raw-{uuid.uuid4().hex[:8]}"
    ctx.started.append(workflow_id)
    handle = await ctx.client.start_workflow(
        "NegotiationWorkflow",
        {"negotiation_id": workflow_id},
        id=workflow_id,
        task_queue=ctx.task_queue,
    )
    with raises(WorkflowFailureError, "Workflow execution failed"):
        await asyncio.wait_for(handle.result(), 20)


# --- counterparty responses ---------------------------------------------------------------------


@case("dev")
async def case_response_that_is_not_an_object(ctx: Ctx) -> None:
    await ctx.signal(ctx.dev, "counterparty_response", "accept, please")
    await ctx.rejected(
        ctx.dev,
        None,
        "malformed: message: Input should be a valid dictionary",
        "counterparty_response",
    )


@case("dev")
async def case_response_counter_without_terms(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.dev,
        "counterparty_response",
        {"message_id": "bad-noterms", "sequence": 9, "action": "counter"},
    )
    await ctx.rejected(ctx.dev, "bad-noterms", "must carry terms")


@case("dev")
async def case_response_sequence_of_the_wrong_type(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.dev,
        "counterparty_response",
        {"message_id": "bad-seq-type", "sequence": "next", "action": "reject"},
    )
    await ctx.rejected(ctx.dev, "bad-seq-type", "sequence: Input should be a valid integer")


@case("dev")
async def case_response_unknown_action(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.dev,
        "counterparty_response",
        {"message_id": "bad-action", "sequence": 9, "action": "haggle"},
    )
    await ctx.rejected(ctx.dev, "bad-action", "action: Input should be")


@case("dev")
async def case_response_negative_price(ctx: Ctx) -> None:
    offer = COUNTER.model_dump(mode="json") | {"total_contract_value": "-5"}
    await ctx.signal(
        ctx.dev,
        "counterparty_response",
        {"message_id": "bad-negative", "sequence": 9, "action": "counter", "terms": offer},
    )
    await ctx.rejected(ctx.dev, "bad-negative", "terms.total_contract_value")


@case("dev")
async def case_response_unknown_field(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.dev,
        "counterparty_response",
        {"message_id": "bad-extra", "sequence": 9, "action": "reject", "walk_away": "40000"},
    )
    await ctx.rejected(ctx.dev, "bad-extra", "walk_away: Extra inputs are not permitted")


@case("dev")
async def case_response_oversized_note(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.dev,
        "counterparty_response",
        {"message_id": "bad-note", "sequence": 9, "action": "reject", "note": "x" * 100_000},
    )
    await ctx.rejected(ctx.dev, "bad-note", "note: String should have at most 2000 characters")


@case("dev")
async def case_response_out_of_sequence(ctx: Ctx) -> None:
    await ctx.dev.respond("counter", terms(49000, 10, 45), message_id="bad-stale", sequence=1)
    await ctx.rejected(ctx.dev, "bad-stale", "stale: sequence 1 is not after 1")


@case("dev")
async def case_response_out_of_place(ctx: Ctx) -> None:
    await ctx.dev.respond("sign", message_id="bad-sign", sequence=7)
    await ctx.rejected(ctx.dev, "bad-sign", "'sign' is not possible in the development movement")


@case("dev")
async def case_response_repeating_a_message_id_with_other_content(ctx: Ctx) -> None:
    # cp-first was the counter that opened round 1; the same id now carries a rejection.
    await ctx.dev.respond("reject", message_id="cp-first", sequence=1)
    await ctx.rejected(
        ctx.dev, "cp-first", "message id cp-first was already used for a different message"
    )


@case("dev")
async def case_response_repeated_exactly(ctx: Ctx) -> None:
    await ctx.dev.respond("counter", COUNTER, message_id="cp-first", sequence=1)
    await asyncio.sleep(0.3)
    s = await ctx.dev.status()
    assert s.round == 1 and [o.version for o in s.offers] == [1, 2, 3]  # not applied twice
    assert not [
        r for r in s.rejected_messages if r.message_id == "cp-first" and "different" not in r.reason
    ]


@case("dev")
async def case_unknown_signal_name(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.dev,
        "counterparty_respnse",
        {"message_id": "bad-typo", "sequence": 9, "action": "accept"},
    )
    await ctx.rejected(
        ctx.dev, "bad-typo", "unknown signal 'counterparty_respnse'", "counterparty_respnse"
    )


@case("dev")
async def case_unknown_signal_without_payload(ctx: Ctx) -> None:
    await ctx.signal(ctx.dev, "approve_everything", None)
    await ctx.rejected(ctx.dev, None, "unknown signal 'approve_everything'", "approve_everything")


@case("dev")
async def case_unknown_update_name(ctx: Ctx) -> None:
    handle = ctx.client.get_workflow_handle(ctx.dev.id)
    with raises(WorkflowUpdateFailedError, "update failed") as failed:
        await handle.execute_update("approve_everything", {"message_id": "bad-update"})
    assert "approve_everything" in str(failed.value.cause)


@case("dev")
async def case_unknown_query_name(ctx: Ctx) -> None:
    # Failure messages are sealed like every payload (they may quote data), and a query's failure
    # reaches the client as its message alone: the caller learns the query failed; the reason is
    # for operators who can decode it (the codec server).
    with raises(WorkflowQueryFailedError, "Encoded failure"):
        await ctx.client.get_workflow_handle(ctx.dev.id).query("secret_terms")


@case(None)
async def case_response_to_an_unknown_negotiation(ctx: Ctx) -> None:
    with raises(api.NegotiationNotFound, "no negotiation t-nobody"):
        await api.send_response(
            ctx.client,
            "t-nobody",
            CounterpartyResponse(message_id="m", sequence=1, action="accept"),
        )


# --- decisions ----------------------------------------------------------------------------------


@case("owner")
async def case_decision_signal_that_is_a_list(ctx: Ctx) -> None:
    await ctx.signal(ctx.owner, "human_decision", ["approve"])
    await ctx.rejected(
        ctx.owner, None, "malformed: message: Input should be a valid dictionary", "human_decision"
    )


@case("owner")
async def case_decision_signal_missing_fields(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.owner, "human_decision", {"message_id": "bad-fields", "verdict": "approve"}
    )
    await ctx.rejected(ctx.owner, "bad-fields", "request_id: Field required")


@case("owner")
async def case_decision_signal_from_an_unknown_approver(ctx: Ctx) -> None:
    await ctx.signal(ctx.owner, "human_decision", decision(ctx, "bad-mallory", approver="mallory"))
    await ctx.rejected(ctx.owner, "bad-mallory", "mallory is not a participant")


@case("owner")
async def case_decision_signal_from_the_wrong_role(ctx: Ctx) -> None:
    await ctx.signal(ctx.owner, "human_decision", decision(ctx, "bad-role", approver="lee"))
    await ctx.rejected(
        ctx.owner, "bad-role", "lee holds the role legal; this request needs deal_owner"
    )


@case("tier")
async def case_decision_signal_beyond_authority(ctx: Ctx) -> None:
    fin = decision(ctx, "bad-authority", approver="fin", request_id=ctx.finance_id)
    await ctx.signal(ctx.tier, "human_decision", fin)
    await ctx.rejected(ctx.tier, "bad-authority", "fin's authority limit is below")


@case("owner")
async def case_decision_signal_on_stale_terms(ctx: Ctx) -> None:
    await ctx.signal(ctx.owner, "human_decision", decision(ctx, "bad-stale", terms_version=1))
    await ctx.rejected(ctx.owner, "bad-stale", "stale terms version 1")


@case("owner")
async def case_decision_signal_for_an_unknown_request(ctx: Ctx) -> None:
    await ctx.signal(
        ctx.owner, "human_decision", decision(ctx, "bad-request", request_id="dev-99-nope")
    )
    await ctx.rejected(ctx.owner, "bad-request", "unknown decision request dev-99-nope")


@case("owner")
async def case_decision_signal_revising_beyond_the_walk_away(ctx: Ctx) -> None:
    revised = terms(30000).model_dump(mode="json")
    await ctx.signal(
        ctx.owner,
        "human_decision",
        decision(ctx, "bad-beyond", verdict="revise", revised_terms=revised),
    )
    await ctx.rejected(ctx.owner, "bad-beyond", "beyond the walk-away on total_contract_value")


@case("owner")
async def case_decide_from_an_unknown_approver(ctx: Ctx) -> None:
    with raises(api.DecisionRejected, "mallory is not a participant"):
        await ctx.owner.decide(ctx.pending_id, "mallory")


@case("tier")
async def case_decide_beyond_authority(ctx: Ctx) -> None:
    with raises(api.DecisionRejected, "fin's authority limit is below"):
        await ctx.tier.decide(ctx.finance_id, "fin")


@case("owner")
async def case_decide_on_stale_terms(ctx: Ctx) -> None:
    with raises(api.DecisionRejected, "stale terms version 1"):
        await ctx.owner.decide(ctx.pending_id, "ana", version=1)


@case("owner")
async def case_decide_resending_a_rejected_decision(ctx: Ctx) -> None:
    # bad-mallory was recorded as rejected (signal); sent again as an update it is refused.
    await ctx.rejected(ctx.owner, "bad-mallory", "mallory")
    with raises(api.DecisionRejected, "message bad-mallory was already received and not accepted"):
        await ctx.owner.decide(ctx.pending_id, "mallory", message_id="bad-mallory")


@case("owner")
async def case_decide_reusing_a_message_id_for_another_decision(ctx: Ctx) -> None:
    await ctx.rejected(ctx.owner, "bad-role", "lee")
    with raises(api.DecisionRejected, "message id bad-role was already used for a different"):
        await ctx.owner.decide(ctx.pending_id, "ana", message_id="bad-role")


@case("owner")
async def case_decide_with_a_malformed_payload(ctx: Ctx) -> None:
    handle = ctx.client.get_workflow_handle(ctx.owner.id)
    with raises(WorkflowUpdateFailedError, "update failed") as failed:
        await handle.execute_update("decide", {"message_id": "bad-raw-update", "verdict": "maybe"})
    assert "validation errors for HumanDecision" in str(failed.value.cause)


@case(None)
async def case_decision_model_with_revise_and_no_terms(ctx: Ctx) -> None:
    with raises(ValidationError, "revise"):
        HumanDecision(message_id="m", request_id="r", approver="ana", verdict="revise")


@case(None)
async def case_retrospective_score_out_of_range(ctx: Ctx) -> None:
    with raises(ValidationError, "satisfaction\n  Input should be less than or equal to 5"):
        RetrospectiveAnswer(message_id="m", participant="ana", satisfaction=7)


# --- closed negotiations ------------------------------------------------------------------------


@case("closed")
async def case_response_to_a_negotiation_with_an_outcome(ctx: Ctx) -> None:
    with raises(api.NegotiationClosed, "is closed \\(rejected\\)"):
        await ctx.closed.respond("accept", message_id="bad-closed-response")


@case("closed")
async def case_decision_signal_to_a_negotiation_with_an_outcome(ctx: Ctx) -> None:
    await api.send_decision(
        ctx.client,
        ctx.closed.id,
        HumanDecision(
            message_id="bad-closed-signal", request_id="clo-1-x", approver="ana", verdict="approve"
        ),
    )
    await ctx.rejected(ctx.closed, "bad-closed-signal", "the negotiation is closed \\(rejected\\)")


@case("closed")
async def case_decide_on_a_negotiation_with_an_outcome(ctx: Ctx) -> None:
    with raises(api.DecisionRejected, "the negotiation is closed \\(rejected\\)"):
        await ctx.closed.decide("clo-1-x", "ana")


@case("closed")
async def case_cancel_a_negotiation_with_an_outcome(ctx: Ctx) -> None:
    with raises(api.NegotiationClosed, "cannot be cancelled"):
        await api.cancel(ctx.client, ctx.closed.id)


@case("closed")
async def case_retrospective_from_someone_outside_the_team(ctx: Ctx) -> None:
    with raises(api.DecisionRejected, "mallory is not a participant"):
        await api.answer_retrospective(
            ctx.client,
            ctx.closed.id,
            RetrospectiveAnswer(message_id="bad-retro", participant="mallory", satisfaction=3),
        )


@case(None)
async def case_response_to_a_closed_workflow(ctx: Ctx) -> None:
    with raises(api.NegotiationClosed, "is closed \\(terminated\\)"):
        await ctx.ended.respond("accept")


@case(None)
async def case_decide_on_a_closed_workflow(ctx: Ctx) -> None:
    with raises(api.NegotiationClosed, "is closed \\(terminated\\)"):
        await ctx.ended.decide("dev-1-x", "ana")


# --- a flood -----------------------------------------------------------------------------------


@case("flood")
async def case_flood_of_signals_to_one_negotiation(ctx: Ctx) -> None:
    """300 signals at once: each bad one recorded once, the good one applied once, none lost."""
    n = ctx.flood
    same = CounterpartyResponse(
        message_id="flood-good", sequence=2, action="counter", terms=terms(51000, 10, 45)
    )
    sends = []
    for i in range(100):
        sends.append(
            ctx.signal(
                n,
                "counterparty_response",
                {"message_id": f"flood-bad-{i}", "sequence": 3, "action": "counter"},
            )
        )
        sends.append(ctx.signal(n, "counterparty_response", same.model_dump(mode="json")))
        sends.append(ctx.signal(n, "no_such_signal", {"message_id": f"flood-unknown-{i}"}))
    await asyncio.gather(*sends)
    s = await n.until(
        lambda s: len(s.rejected_messages) >= 200 and s.our_terms.version == 5, timeout=60
    )
    ids = [r.message_id for r in s.rejected_messages]
    assert sorted(ids) == sorted(
        [f"flood-bad-{i}" for i in range(100)] + [f"flood-unknown-{i}" for i in range(100)]
    )
    assert s.round == 2 and [o.version for o in s.offers] == [1, 2, 3, 4, 5]


# --- the batch ----------------------------------------------------------------------------------


@dataclass
class Batch:
    """What each case raised, whether each negotiation moved on afterwards, and the task failures."""

    errors: dict[str, BaseException | None]
    moved_on: dict[str, bool]
    task_failures: dict[str, list[str]]


_SERVER_FLOW_CONTROL = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND,
}


async def _task_failures(client: Client, negotiation_id: str) -> list[str]:
    failed = []
    for workflow_id in [negotiation_id, *(f"{negotiation_id}/{m.value}" for m in Movement)]:
        flow_control = 0
        try:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        except RPCError:
            continue  # that movement never played
        for e in history.events:
            if e.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                continue
            failure = e.workflow_task_failed_event_attributes
            # The server itself fails a task whose commands crossed newly arrived signals
            # (UNHANDLED_COMMAND), or that had more signals buffered meanwhile than it keeps
            # (FORCE_CLOSE_COMMAND, 100 by default), so that the worker runs it again with them:
            # flow control under a flood, not a failure of the workflow's code.
            if failure.cause in _SERVER_FLOW_CONTROL:
                flow_control += 1
                continue
            cause = WorkflowTaskFailedCause.Name(failure.cause)
            failed.append(f"{workflow_id}: {cause} {failure.failure.message}")
        if flow_control > 5:  # once or twice is flow control; again and again is a loop
            failed.append(f"{workflow_id}: {flow_control} tasks failed by the server")
    return failed


@pytest.fixture(scope="module")
async def batch(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Batch]:
    workdir = tmp_path_factory.mktemp("bad-input")
    client = dev_env.client
    task_queue = f"bad-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        task_queue=task_queue,
        outbox_dir=workdir / "outbox",
        ledger_dir=workdir / "ledger",
    )
    # Finance approves the value at this size: fin's limit is too low, fay's is enough.
    team = [
        {
            "name": "ana",
            "role": "deal_owner",
            "authority_limit": "1000000",
            "email": "ana@f.example",
        },
        {"name": "fin", "role": "finance", "authority_limit": "200000", "email": "fin@f.example"},
        {"name": "fay", "role": "finance", "authority_limit": "1000000", "email": "fay@f.example"},
    ]
    async with build_worker(client, settings, task_queue=task_queue):
        requests = {
            "dev": make_request("automated"),
            "owner": make_request("conductor_led"),
            "closed": make_request("automated"),
            "ended": make_request("automated"),
            "flood": make_request("automated"),
            "tier": make_request(
                "conductor_led",
                participants=team,
                opening_terms__total_contract_value="600000",
                mandate__total_contract_value={"target": "600000", "walk_away": "480000"},
            ),
        }
        negotiations = {k: Negotiation(client, r, workdir / "outbox") for k, r in requests.items()}
        for n in negotiations.values():
            assert (await api.start_negotiation(client, n.request, task_queue=task_queue)).started
        dev, owner, closed, ended, flood, tier = negotiations.values()
        await tier.respond("counter", terms(500000, 10, 45))
        await tier.approve("deal_owner", "ana")
        finance = await tier.pending("finance")
        await dev.respond("counter", COUNTER, message_id="cp-first")
        await flood.respond("counter", COUNTER)
        await owner.respond("counter", COUNTER)
        await closed.respond("reject")
        await ended.until(lambda s: s.our_terms is not None)
        await client.get_workflow_handle(ended.id).terminate(reason="bad-input corpus")
        pending = await owner.pending("deal_owner")
        await dev.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
        await flood.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
        await closed.until(lambda s: s.outcome is not None)
        cli = Fitnest(client, task_queue, workdir, workdir / "outbox")
        ctx = Ctx(
            client,
            cli,
            dev,
            owner,
            closed,
            ended,
            flood,
            tier,
            task_queue,
            pending.request_id,
            finance.request_id,
        )

        async def run_case(fn: Case) -> BaseException | None:
            began = asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(fn(ctx), 30)
            except BaseException as err:  # kept for the case's own test
                return err
            finally:
                print(fn.__name__, round(asyncio.get_running_loop().time() - began, 2))
            return None

        # Cases on different negotiations run side by side; those on one run in turn.
        by_target: dict[str | None, list[str]] = {}
        for name, (target, _) in CASES.items():
            by_target.setdefault(target, []).append(name)
        errors: dict[str, BaseException | None] = {}

        async def run_target(names: list[str]) -> None:
            for name in names:
                errors[name] = await run_case(CASES[name][1])

        await asyncio.gather(*(run_target(names) for names in by_target.values()))

        # A good message to each negotiation still open: it must still move on.
        moved_on: dict[str, bool] = {}

        async def moves(
            key: str, step: Callable[[], Awaitable[Any]], check: Callable[[Any], bool]
        ) -> None:
            try:
                await step()
                await negotiations[key].until(check)
                moved_on[key] = True
            except (AssertionError, api.NegotiationError) as err:
                moved_on[key] = False
                print(f"{key} did not move on: {err}")

        await asyncio.gather(
            moves(
                "dev",
                lambda: dev.respond("counter", terms(51000, 10, 45), sequence=100),
                lambda s: s.our_terms.version == 5,
            ),
            moves(
                "owner",
                lambda: owner.decide(pending.request_id, "ana"),
                lambda s: (
                    pending.request_id not in [p.request_id for p in s.pending_decisions]
                    and s.decisions
                ),
            ),
            moves(
                "tier",
                lambda: tier.decide(finance.request_id, "fay"),
                lambda s: s.movement == Movement.CLOSURE,
            ),
            moves(
                "flood",
                lambda: flood.respond("accept", sequence=3),
                lambda s: s.movement == Movement.CLOSURE,
            ),
            moves(
                "closed",
                lambda: api.answer_retrospective(
                    client,
                    closed.id,
                    RetrospectiveAnswer(message_id="retro-ana", participant="ana", satisfaction=4),
                ),
                lambda s: True,
            ),
        )
        moved_on["ended"] = moved_on["raw"] = True  # closed for good: nothing can move them
        failures = {key: await _task_failures(client, n.id) for key, n in negotiations.items()}
        failures["raw"] = [f for wid in ctx.started for f in await _task_failures(client, wid)]
        yield Batch(errors, moved_on, failures)
        for n in (dev, owner, closed, flood, tier):
            await client.get_workflow_handle(n.id).terminate(reason="bad-input corpus done")


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input_gets_a_clear_error_or_a_recorded_rejection(
    batch: Batch, name: str
) -> None:
    error = batch.errors[name]
    if error is not None:
        raise error
    target = CASES[name][0]
    if target is not None:
        assert batch.task_failures[target] == [], "a workflow task failed"
        assert batch.moved_on[target], f"the {target} negotiation did not move on afterwards"


def test_the_corpus_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30
