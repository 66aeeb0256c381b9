"""Every way a negotiation can end, with time skipping for the deadlines."""

from __future__ import annotations

from datetime import timedelta

from negotiation.models import DecisionKind, Movement, Outcome
from tests.workflows.harness import make_request, terms


async def test_counterparty_accepting_the_opening_offer_goes_straight_to_closure_and_agrees(start):
    n = await start(make_request("automated"))
    await n.respond("accept")
    await n.until(lambda s: s.movement == Movement.CLOSURE)
    await n.respond("sign")
    result = await n.result()
    assert result.outcome == Outcome.AGREED
    assert result.agreed_terms is not None and result.agreed_terms.version == 1
    assert result.kpis.rounds == 0
    assert result.kpis.deal_quality == 100  # the opening offer is the target
    assert set(result.kpis.movement_seconds) == {"preparation", "opening", "closure"}
    handoff = [m for m in n.mail() if "over to implementation" in m]
    assert handoff and "ivo@fitnest.example" in handoff[0]


async def test_counterparty_rejection_ends_the_negotiation_as_rejected(start):
    n = await start(make_request("automated"))
    await n.respond("counter", terms(50000, 10, 45))
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("reject", note="too expensive")
    result = await n.result()
    assert result.outcome == Outcome.REJECTED
    assert result.agreed_terms is None and result.kpis.deal_quality is None


async def test_counterparty_withdrawing_before_signature_ends_as_withdrawn(start):
    n = await start(make_request("automated"))
    await n.respond("accept")
    await n.until(lambda s: s.movement == Movement.CLOSURE)
    await n.respond("withdraw")
    result = await n.result()
    assert result.outcome == Outcome.WITHDRAWN


async def test_rounds_beyond_the_maximum_walk_away(start):
    n = await start(make_request("conductor_led", mandate__max_rounds=1))
    await n.respond("counter", terms(50000, 10, 45))
    pending = await n.pending("deal_owner")
    await n.decide(pending.request_id, "ana", "revise", revised=terms(57000, 5, 40))
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("counter", terms(52000, 10, 45))
    result = await n.result()
    assert result.outcome == Outcome.WALKED_AWAY
    assert "maximum number of rounds" in result.outcome_reason
    assert any("We end the negotiation" in m for m in n.mail())


async def test_deal_owner_rejecting_the_counteroffer_walks_away(start):
    n = await start(make_request("conductor_led"))
    await n.respond("counter", terms(50000, 10, 45))
    pending = await n.pending("deal_owner")
    await n.decide(pending.request_id, "ana", "reject")
    result = await n.result()
    assert result.outcome == Outcome.WALKED_AWAY
    assert result.kpis.human_decisions == 1


async def test_a_90_day_negotiation_plays_its_rounds_and_expires_at_the_deadline(start, ts_env):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    await ts_env.sleep(timedelta(days=30))
    await n.respond("counter", terms(50000, 10, 45))
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await ts_env.sleep(timedelta(days=30))
    await n.respond("counter", terms(51000, 10, 45))
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 5)
    assert s.outcome is None and s.round == 2
    result = await n.result()  # the counterparty goes silent; time skips to the deadline
    assert result.outcome == Outcome.EXPIRED
    cycle = timedelta(seconds=result.kpis.cycle_time_seconds)
    assert timedelta(days=89, hours=23) < cycle < timedelta(days=90, hours=1)
    assert result.status.closed_at is not None
    assert result.status.closed_at >= n.request.mandate.deadline


async def test_a_decision_nobody_takes_expires_the_negotiation_at_the_deadline(start):
    n = await start(make_request("conductor_led"))
    await n.respond("counter", terms(50000, 10, 45))
    await n.pending("deal_owner")
    result = await n.result()
    assert result.outcome == Outcome.EXPIRED
    assert result.status.pending_decisions == []


async def test_cancelling_a_negotiation_ends_it_as_cancelled(start):
    n = await start(make_request("conductor_led"))
    await n.respond("counter", terms(50000, 10, 45))
    await n.pending("deal_owner")
    # Cancel once the request is out: the time-skipping server never releases its clock for an
    # activity that was still running when its workflow was cancelled (the real server does).
    await n.mail_containing("Decision needed")
    await n.client.get_workflow_handle(n.id).cancel()
    result = await n.result()
    assert result.outcome == Outcome.CANCELLED
    # The movement ends too: it completes, handing back what it held so the close records it.
    desc = await n.client.get_workflow_handle(f"{n.id}/development").describe()
    assert desc.status is not None and desc.status.name == "COMPLETED"


async def test_a_closure_sign_off_refused_walks_away(start):
    # A fallback clause accepted in the mandate still needs counsel's signature at closure.
    request = make_request("automated", mandate__acceptable_clauses=["mfn"])
    n = await start(request)
    await n.respond(
        "counter", terms(60000, 0, 30, clauses=("mfn",))
    )  # meets target: the strategy accepts
    pending = await n.pending("legal")
    assert pending.kind == DecisionKind.LEGAL_SIGNOFF
    await n.decide(pending.request_id, "lee", "reject")
    result = await n.result()
    assert result.outcome == Outcome.WALKED_AWAY
    assert "lee refused" in result.outcome_reason
