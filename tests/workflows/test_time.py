"""Time is part of the score: every reminder, escalation and rhythm is a durable timer.

Each test runs days or weeks of a negotiation in well under a second on the time-skipping server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from negotiation.models import Movement, Outcome, RetrospectiveAnswer, Role
from starters import client as api
from tests.workflows.harness import make_request, terms

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


async def _owner_request(start, **overrides):
    n = await start(make_request("conductor_led", **overrides))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", terms(50000, 10, 45))
    pending = await n.pending("deal_owner")
    return n, pending


async def test_a_reminder_fires_at_the_due_time_and_not_before(start, ts_env):
    n, pending = await _owner_request(start)
    asked = (await n.status()).their_terms.at
    assert pending.due_at - asked == pytest.approx(24 * HOUR, abs=timedelta(seconds=5))  # standard
    await ts_env.sleep(23 * HOUR)
    assert (await n.status()).reminders == []
    await ts_env.sleep(2 * HOUR)
    s = await n.until(lambda s: bool(s.reminders))
    reminder = s.reminders[0]
    assert (reminder.to, reminder.request_id) == ("deal_owner", pending.request_id)
    assert reminder.at - s.their_terms.at == pytest.approx(24 * HOUR, abs=timedelta(seconds=5))
    assert any("Reminder: decision due" in m and "ana@fitnest.example" in m for m in n.mail())


async def test_an_unanswered_request_escalates_at_twice_the_due_time_to_the_next_authority(
    start, ts_env
):
    n, pending = await _owner_request(start)
    await ts_env.sleep(47 * HOUR)
    s = await n.status()
    assert s.escalations == [] and s.pending_decisions[0].role == Role.DEAL_OWNER
    await ts_env.sleep(2 * HOUR)
    s = await n.until(lambda s: bool(s.escalations))
    escalation = s.escalations[0]
    assert (escalation.from_role, escalation.to_role) == (Role.DEAL_OWNER, Role.EXECUTIVE)
    assert escalation.at - s.their_terms.at == pytest.approx(48 * HOUR, abs=timedelta(seconds=5))
    assert [(p.request_id, p.role) for p in s.pending_decisions] == [
        (pending.request_id, Role.EXECUTIVE)
    ]
    with pytest.raises(api.DecisionRejected, match="needs executive"):
        await n.decide(pending.request_id, "ana")
    await n.decide(pending.request_id, "eve", "reject")
    result = await n.result()
    assert result.outcome == Outcome.WALKED_AWAY
    assert result.kpis.escalations == 1 and result.kpis.reminders == 1
    assert result.status.decisions[-1].approver == "eve"


async def test_a_delegate_decides_for_the_delegator_within_the_dates_only(start, ts_env):
    probe = make_request("conductor_led")
    now = await ts_env.get_current_time()
    team = [p.model_dump(mode="json") for p in probe.participants]
    team[0]["delegation"] = {
        "delegate": "ivo",
        "starts": (now + 20 * HOUR).isoformat(),
        "ends": (now + 40 * HOUR).isoformat(),
    }
    n, pending = await _owner_request(start, participants=team)
    with pytest.raises(api.DecisionRejected, match="delegation from ana runs from"):
        await n.decide(pending.request_id, "ivo", "revise", revised=terms(56000, 5, 40))
    await ts_env.sleep(21 * HOUR)
    receipt = await n.decide(pending.request_id, "ivo", "revise", revised=terms(56000, 5, 40))
    assert receipt.approver == "ivo"
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    record = s.decisions[-1]
    assert (record.approver, record.acting_for, record.approver_authority) == ("ivo", "ana", 100000)
    await n.respond("counter", terms(52000, 10, 45))
    second = await n.pending("deal_owner")
    await ts_env.sleep(20 * HOUR)  # past the delegation's end
    with pytest.raises(api.DecisionRejected, match="holds the role implementation"):
        await n.decide(second.request_id, "ivo")


def test_delegations_never_chain_into_a_cycle():
    probe = make_request("conductor_led")
    team = [p.model_dump(mode="json") for p in probe.participants]
    window = {"starts": "2027-01-01T00:00:00Z", "ends": "2027-01-10T00:00:00Z"}
    team[0]["delegation"] = {"delegate": "fay", **window}
    team[2]["delegation"] = {"delegate": "ana", **window}
    with pytest.raises(ValueError, match="cycle"):
        make_request("conductor_led", participants=team)


async def test_a_change_of_price_voids_the_finance_approval_but_not_the_legal_one(start):
    team = [p.model_dump(mode="json") for p in make_request().participants]
    team[0]["authority_limit"] = "1000000"
    request = make_request(
        "collaborative_ensemble",
        participants=team,
        opening_terms__total_contract_value="300000",
        mandate__total_contract_value={"target": "300000", "walk_away": "240000"},
        mandate__acceptable_clauses=["mfn"],
    )
    n = await start(request)
    await n.respond("counter", terms(260000, 10, 45, clauses=("mfn",)))
    s = await n.until(lambda s: len(s.pending_decisions) == 3)
    by_role = {p.role: p for p in s.pending_decisions}
    assert set(by_role) == {Role.DEAL_OWNER, Role.LEGAL, Role.FINANCE}
    await n.decide(by_role[Role.LEGAL].request_id, "lee")
    await n.decide(by_role[Role.FINANCE].request_id, "fay")
    await n.decide(
        by_role[Role.DEAL_OWNER].request_id,
        "ana",
        "revise",
        revised=terms(280000, 5, 40, clauses=("mfn",)),
    )
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("counter", terms(270000, 10, 45, clauses=("mfn",)))  # only the price moved
    s = await n.until(lambda s: s.their_terms.version == 4 and len(s.pending_decisions) == 2)
    assert {p.role for p in s.pending_decisions} == {Role.DEAL_OWNER, Role.FINANCE}
    carried = [d for d in s.decisions if d.terms_version == 4]
    assert [(d.role, d.approver, d.carried_from) for d in carried] == [(Role.LEGAL, "lee", 2)]


async def test_the_checkpoint_rhythm_is_weekly_and_stops_at_closure(start, ts_env):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    await ts_env.sleep(timedelta(days=22))
    s = await n.until(lambda s: len(s.checkpoints) == 3)
    gaps = [b - a for a, b in zip(s.checkpoints, s.checkpoints[1:], strict=False)]
    assert gaps == [pytest.approx(7 * DAY, abs=timedelta(seconds=5))] * 2
    first = next(m for m in n.mail() if "Checkpoint 1" in m)
    assert "Movement: opening" in first and "counterparty reminded" in first  # day 5
    third = next(m for m in n.mail() if "Checkpoint 3" in m)
    assert "Since the last checkpoint" in third and "counterparty reminded" not in third
    await n.respond("accept")
    await n.until(lambda s: s.movement == Movement.CLOSURE)
    await ts_env.sleep(timedelta(days=21))
    s = await n.status()
    assert len(s.checkpoints) == 3  # none after closure
    assert s.outcome is None


async def test_a_time_sensitive_negotiation_checks_in_every_working_day(start, ts_env):
    n = await start(make_request("automated", time_sensitive=True))
    await n.until(lambda s: s.our_terms is not None)
    await ts_env.sleep(timedelta(days=14, hours=1))
    s = await n.until(lambda s: len(s.checkpoints) >= 10)
    assert len(s.checkpoints) == 10  # two weeks of working days
    assert all(moment.weekday() < 5 for moment in s.checkpoints)


async def test_a_silent_counterparty_is_reminded_after_the_policy_days_and_then_expires(
    start, ts_env
):
    n = await start(make_request("automated"))
    offer = (await n.until(lambda s: s.our_terms is not None)).our_terms
    await ts_env.sleep(4 * DAY)
    assert (await n.status()).reminders == []
    await ts_env.sleep(2 * DAY)
    s = await n.until(lambda s: bool(s.reminders))
    assert s.reminders[0].to == "counterparty"
    assert s.reminders[0].at - offer.at == pytest.approx(5 * DAY, abs=timedelta(seconds=5))
    result = await n.result()
    assert result.outcome == Outcome.EXPIRED
    assert [r.to for r in result.status.reminders] == ["counterparty"]  # once, not daily


async def test_the_sla_clock_never_runs_while_the_counterparty_holds_the_ball(start, ts_env):
    n = await start(make_request("conductor_led"))
    await n.until(lambda s: s.our_terms is not None)
    await ts_env.sleep(10 * DAY)  # the counterparty takes ten days
    s = await n.status()
    assert [r.to for r in s.reminders] == ["counterparty"]  # no approver was chased meanwhile
    await n.respond("counter", terms(50000, 10, 45))
    pending = await n.pending("deal_owner")
    await ts_env.sleep(30 * HOUR)  # our team takes 30 hours: reminded once at 24
    await n.decide(pending.request_id, "ana", "reject")
    result = await n.result()
    kpis = result.kpis
    assert [r.to for r in result.status.reminders] == ["counterparty", "deal_owner"]
    assert kpis.counterparty_wait_seconds == pytest.approx(10 * 86400, rel=0.01)
    assert kpis.internal_wait_seconds == pytest.approx(30 * 3600, rel=0.02)
    assert 0 <= kpis.value_adding_share < 0.05


async def test_two_rounds_without_a_concession_propose_a_check_in(start):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    for version in (3, 5):
        await n.respond("counter", terms(50000, 10, 45))
        await n.until(lambda s, v=version: s.our_terms.version == v)
    s = await n.status()
    assert s.touchpoints == []  # one repeat is not yet a stall of two rounds
    await n.respond("counter", terms(50000, 10, 45))
    s = await n.until(lambda s: bool(s.touchpoints))
    assert s.touchpoints[0].round == 3
    assert any("Shall we talk?" in m for m in n.mail())


async def test_the_retrospective_takes_answers_for_seven_days_and_records_the_missing(
    start, ts_env
):
    n = await start(make_request("automated"))
    await n.respond("accept")
    await n.until(lambda s: s.movement == Movement.CLOSURE)
    await n.respond("sign")
    s = await n.until(lambda s: s.retrospective_until is not None)
    assert s.outcome == Outcome.AGREED
    await api.answer_retrospective(
        n.client, n.id, RetrospectiveAnswer(message_id="r1", participant="ana", satisfaction=5)
    )
    await ts_env.sleep(3 * DAY)
    await api.answer_retrospective(
        n.client,
        n.id,
        RetrospectiveAnswer(message_id="r2", participant="fay", satisfaction=2, note="slow"),
    )
    with pytest.raises(api.DecisionRejected, match="already answered"):
        await api.answer_retrospective(
            n.client, n.id, RetrospectiveAnswer(message_id="r3", participant="ana", satisfaction=1)
        )
    result = await n.result()
    entries = {e.participant: e for e in result.status.retrospective}
    assert entries["ana"].satisfaction == 5 and entries["fay"].note == "slow"
    assert {p for p, e in entries.items() if e.missing} == {"lee", "eve", "ivo"}
    assert result.kpis.stakeholder_satisfaction == 3.5
    assert (result.kpis.retrospective_answers, result.kpis.retrospective_missing) == (2, 3)
    closed = result.status.closed_at
    assert closed is not None and closed - result.status.started_at < DAY  # cycle ends at closure


async def test_without_a_next_authority_present_the_request_is_reminded_but_not_escalated(
    start, ts_env
):
    team = [p.model_dump(mode="json") for p in make_request().participants if p.name != "eve"]
    n, pending = await _owner_request(start, participants=team)
    await ts_env.sleep(72 * HOUR)
    s = await n.status()
    assert s.escalations == []
    assert [r.to for r in s.reminders] == ["deal_owner"]
    assert s.pending_decisions[0].role == Role.DEAL_OWNER  # still hers to decide
    await n.decide(pending.request_id, "ana", "reject")
    assert (await n.result()).outcome == Outcome.WALKED_AWAY
