"""Messages are never lost, never crash the negotiation, and never count twice."""

from __future__ import annotations

import pytest

from negotiation.models import DecisionKind, Movement, Outcome
from starters import client as api
from tests.workflows.harness import make_request, terms


async def test_a_response_sent_before_the_opening_offer_is_kept_until_the_opening_takes_it(start):
    n = await start(make_request("automated"))
    await n.respond("counter", terms(50000, 10, 45))  # arrives while preparation plays
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    assert s.their_terms is not None and s.their_terms.version == 2
    assert s.rejected_messages == []


async def test_a_repeated_message_id_changes_nothing(start):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", terms(50000, 10, 45), message_id="cp-same", sequence=1)
    await n.respond("counter", terms(50000, 10, 45), message_id="cp-same", sequence=1)
    s = await n.until(lambda s: s.our_terms.version == 3)
    await n.respond("counter", terms(51000, 10, 45), message_id="cp-next", sequence=2)
    s = await n.until(lambda s: s.our_terms.version == 5)
    assert s.round == 2
    assert [o.version for o in s.offers] == [1, 2, 3, 4, 5]
    assert s.rejected_messages == []


async def test_a_malformed_response_is_recorded_with_the_reason_and_the_negotiation_goes_on(start):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    handle = n.client.get_workflow_handle(n.id)
    await handle.signal(
        "counterparty_response", {"message_id": "bad-1", "sequence": 1, "action": "counter"}
    )
    await handle.signal("counterparty_response", "not even an object")
    s = await n.until(lambda s: len(s.rejected_messages) == 2)
    first = s.rejected_messages[0]
    assert first.message_id == "bad-1" and "must carry terms" in first.reason
    assert (
        s.rejected_messages[1].message_id is None and "malformed" in s.rejected_messages[1].reason
    )
    await n.respond(
        "counter", terms(50000, 10, 45), message_id="bad-1", sequence=1
    )  # fixed and resent
    await n.until(lambda s: s.our_terms.version == 3)


async def test_a_stale_sequence_is_rejected_with_the_reason(start):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", terms(50000, 10, 45), sequence=5)
    await n.until(lambda s: s.our_terms.version == 3)
    await n.respond("counter", terms(49000, 10, 45), sequence=4)
    s = await n.until(lambda s: bool(s.rejected_messages))
    assert "stale: sequence 4 is not after 5" in s.rejected_messages[0].reason
    assert s.round == 1


async def test_a_signature_during_development_is_rejected_with_the_reason(start):
    n = await start(make_request("automated"))
    await n.respond("counter", terms(50000, 10, 45))
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("sign")
    s = await n.until(lambda s: bool(s.rejected_messages))
    assert "'sign' is not possible in the development movement" in s.rejected_messages[0].reason


async def _conductor_waiting_for_owner(start):
    n = await start(make_request("conductor_led"))
    await n.respond("counter", terms(50000, 10, 45))
    return n, await n.pending("deal_owner")


@pytest.mark.parametrize(
    ("approver", "request_id", "version", "verdict", "revised", "reason"),
    [
        ("ana", "dev-99-nope", None, "approve", None, "unknown decision request dev-99-nope"),
        (
            "fay",
            None,
            None,
            "approve",
            None,
            "holds the role finance; this request needs deal_owner",
        ),
        ("mallory", None, None, "approve", None, "mallory is not a participant"),
        ("ana", None, 1, "approve", None, "stale terms version 1"),
        ("ana", None, None, "revise", terms(40000), "beyond the walk-away on total_contract_value"),
    ],
)
async def test_decide_rejects_decisions_that_cannot_be_taken_with_a_clear_message(
    start, approver, request_id, version, verdict, revised, reason
):
    n, pending = await _conductor_waiting_for_owner(start)
    with pytest.raises(api.DecisionRejected, match=reason):
        await n.decide(
            request_id or pending.request_id, approver, verdict, revised=revised, version=version
        )
    s = await n.status()
    assert [p.request_id for p in s.pending_decisions] == [pending.request_id]  # still waiting


async def test_decide_rejects_an_approver_without_enough_authority(start):
    team = [
        {
            "name": "ana",
            "role": "deal_owner",
            "authority_limit": "1000000",
            "email": "ana@fitnest.example",
        },
        {
            "name": "fin",
            "role": "finance",
            "authority_limit": "200000",
            "email": "fin@fitnest.example",
        },
        {
            "name": "fay",
            "role": "finance",
            "authority_limit": "1000000",
            "email": "fay@fitnest.example",
        },
    ]
    request = make_request(
        "conductor_led",
        participants=team,
        opening_terms__total_contract_value="600000",
        mandate__total_contract_value={"target": "600000", "walk_away": "480000"},
    )
    n = await start(request)
    await n.respond("counter", terms(500000, 10, 45))
    await n.approve("deal_owner", "ana")
    finance = await n.pending("finance")  # elevated tier: finance approves the value
    assert finance.required_authority == 500000
    with pytest.raises(api.DecisionRejected, match="fin's authority limit is below"):
        await n.decide(finance.request_id, "fin")
    await n.decide(finance.request_id, "fay")
    await n.until(lambda s: s.movement == Movement.CLOSURE)


async def test_a_decision_is_taken_once_and_a_repeated_update_returns_the_first_receipt(start):
    n, pending = await _conductor_waiting_for_owner(start)
    first = await n.decide(pending.request_id, "ana", "approve", message_id="hd-once")
    again = await n.decide(pending.request_id, "ana", "approve", message_id="hd-once")
    assert again == first
    # Closure waits for the signature, so this one meets an open negotiation: the request is
    # decided, whichever movement holds it now.
    with pytest.raises(api.DecisionRejected, match="already decided"):
        await n.decide(pending.request_id, "ana", "reject", message_id="hd-other")
    signature = await n.pending("deal_owner")
    await n.decide(signature.request_id, "ana")
    await n.respond("sign")
    result = await n.result()
    assert result.outcome == Outcome.AGREED
    assert len([d for d in result.status.decisions if d.kind == DecisionKind.COUNTEROFFER]) == 1


async def test_a_decision_signal_that_cannot_be_taken_is_recorded_not_dropped(start):
    n, pending = await _conductor_waiting_for_owner(start)
    await api.send_decision(
        n.client,
        n.id,
        api.HumanDecision(
            message_id="hd-sig", request_id=pending.request_id, approver="lee", verdict="approve"
        ),
    )
    s = await n.until(lambda s: bool(s.rejected_messages))
    assert s.rejected_messages[0].message_id == "hd-sig"
    assert "holds the role legal" in s.rejected_messages[0].reason
    await api.send_decision(
        n.client,
        n.id,
        api.HumanDecision(
            message_id="hd-sig-2", request_id=pending.request_id, approver="ana", verdict="reject"
        ),
    )
    assert (await n.result()).outcome == Outcome.WALKED_AWAY


async def test_messages_after_the_close_are_refused_with_the_negotiation_closed(start):
    n = await start(make_request("automated"))
    await n.respond("reject")
    result = await n.result()
    assert result.outcome == Outcome.REJECTED
    with pytest.raises(api.NegotiationClosed, match="closed"):
        await n.respond("counter", terms(50000))
    with pytest.raises(api.NegotiationNotFound):
        await api.get_status(n.client, "t-no-such-negotiation")


async def test_starting_the_same_negotiation_twice_starts_one(start, ts_env):
    request = make_request("automated")
    n = await start(request)
    again = await api.start_negotiation(ts_env.client, n.request, task_queue="elsewhere")
    assert not again.started
    s = await n.until(lambda s: s.our_terms is not None)  # the first negotiation plays on
    assert s.movement == Movement.OPENING and s.our_terms.version == 1


async def test_the_status_acknowledges_each_message_as_soon_as_it_arrives(start):
    n, pending = await _conductor_waiting_for_owner(start)
    s = await n.status()
    assert s.last_received is not None and s.last_received.kind == "counterparty_response"
    receipt = await n.decide(pending.request_id, "ana", "reject", message_id="hd-ack")
    s = await n.status()
    assert s.last_received is not None
    assert (s.last_received.message_id, s.last_received.kind) == ("hd-ack", "human_decision")
    assert s.last_received.at == receipt.recorded_at
    # A message the closed negotiation refuses is no receipt: it is recorded as rejected instead.
    await n.until(lambda s: s.outcome is not None)
    late = {
        "message_id": "cp-late",
        "sequence": 9,
        "action": "counter",
        "terms": terms(50000).model_dump(mode="json"),
    }
    # Past the client's own check, as a raw signal would arrive.
    await n.client.get_workflow_handle(n.id).signal("counterparty_response", late)
    s = await n.until(lambda s: any(r.message_id == "cp-late" for r in s.rejected_messages))
    assert "closed" in s.rejected_messages[-1].reason
    assert s.last_received is not None and s.last_received.message_id == "hd-ack"
