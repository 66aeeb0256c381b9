"""The three playbooks play the same counteroffer differently."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from negotiation.models import DecisionKind, Movement, Outcome, Role
from tests.workflows.harness import Negotiation, make_request, terms

WITHIN = terms(
    50000, 10, 45
)  # within walk-away on price, discount and payment days, short of target
BEYOND = terms(40000, 10, 45)  # price beyond the 48k walk-away


async def _review_events(n: Negotiation, child: str) -> list[tuple[int, str, int]]:
    """(event id, kind, workflow task batch) of review activities in a movement's history."""
    history = await n.client.get_workflow_handle(f"{n.id}/{child}").fetch_history()
    scheduled: dict[int, str] = {}
    out = []
    batch = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            batch += 1
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            if name in ("legal_review", "finance_approval"):
                scheduled[event.event_id] = name
                out.append((event.event_id, f"scheduled {name}", batch))
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            if sid in scheduled:
                out.append((event.event_id, f"completed {scheduled[sid]}", batch))
    return out


async def test_automated_strategy_answers_counteroffers_within_the_mandate_without_asking_anyone(
    start,
):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", WITHIN)
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    assert s.pending_decisions == []
    assert s.our_terms.terms.total_contract_value == 55000  # half the gap in round 1
    await n.respond("counter", terms(52000, 10, 45))
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 5)
    conceded = [55000 - float(s.our_terms.terms.total_contract_value)]
    assert 0 < conceded[0] < 5000  # the second concession is smaller than the first
    await n.respond("accept")
    await n.until(lambda s: s.movement.value == "closure")
    await n.respond("sign")
    result = await n.result()
    assert result.outcome == Outcome.AGREED
    assert result.kpis.human_decisions == 0
    assert result.kpis.automated_responses == 2
    assert [d.approver for d in result.status.decisions] == ["policy"]  # signed within policy
    assert result.kpis.compliance.compliant


async def test_automated_escalates_a_counteroffer_beyond_walk_away_to_finance_and_executive_together(
    start,
):
    n = await start(make_request("automated"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", BEYOND)
    s = await n.until(lambda s: len(s.pending_decisions) == 2)
    assert {p.role for p in s.pending_decisions} == {Role.FINANCE, Role.EXECUTIVE}
    assert all(p.kind == DecisionKind.ESCALATION for p in s.pending_decisions)
    assert all(
        "total_contract_value beyond walk-away" in p.reason or "mandate" in p.reason
        for p in s.pending_decisions
    )
    for p in s.pending_decisions:
        await n.decide(p.request_id, "fay" if p.role == Role.FINANCE else "eve")
    s = await n.until(lambda s: s.movement.value == "closure")
    await n.until(
        lambda s: (
            any(p.kind == DecisionKind.SIGNATURE for p in s.pending_decisions)
            or any(p.kind != DecisionKind.SIGNATURE for p in s.pending_decisions)
        )
    )
    # Closure: finance approval matrix is fine, so only the signature is asked (beyond-mandate deals are
    # never signed by policy).
    s = await n.until(lambda s: bool(s.pending_decisions))
    signature = next(p for p in s.pending_decisions if p.kind == DecisionKind.SIGNATURE)
    await n.decide(signature.request_id, "ana")
    await n.respond("sign")
    result = await n.result()
    assert result.outcome == Outcome.AGREED
    assert result.agreed_terms is not None and result.agreed_terms.terms == BEYOND
    assert result.kpis.compliance.compliant, result.kpis.compliance


async def test_conductor_led_deal_owner_decides_every_counteroffer_even_within_the_mandate(start):
    n = await start(make_request("conductor_led"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", WITHIN)
    pending = await n.pending("deal_owner")
    assert pending.kind == DecisionKind.COUNTEROFFER
    s = await n.status()
    assert len(s.pending_decisions) == 1  # nobody else is asked at the same time
    # The request says when and where it was asked, not just when the negotiation began.
    assert pending.movement == Movement.DEVELOPMENT
    assert pending.created_at is not None and pending.created_at > s.started_at
    # The deal owner counters with terms of her own.
    await n.decide(pending.request_id, "ana", "revise", revised=terms(56000, 5, 40))
    s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    assert s.our_terms.terms.total_contract_value == 56000
    events = await _review_events(n, "development")
    kinds = [k for _, k, _ in events]
    # Reviews run one after another: legal completes before finance is scheduled.
    assert kinds == [
        "scheduled legal_review",
        "completed legal_review",
        "scheduled finance_approval",
        "completed finance_approval",
    ]


async def test_conductor_led_escalations_run_one_after_another(start):
    n = await start(make_request("conductor_led"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", BEYOND)
    await n.approve("deal_owner", "ana")
    finance = await n.pending("finance")
    s = await n.status()
    assert [p.role for p in s.pending_decisions] == [Role.FINANCE]  # executive not yet asked
    await n.decide(finance.request_id, "fay")
    executive = await n.pending("executive")
    assert executive.kind == DecisionKind.ESCALATION
    await n.decide(executive.request_id, "eve", "reject")
    result = await n.result()
    assert result.outcome == Outcome.WALKED_AWAY
    assert "eve rejected" in result.outcome_reason


async def test_collaborative_ensemble_asks_every_required_role_at_once_and_reviews_in_parallel(
    start,
):
    n = await start(make_request("collaborative_ensemble"))
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", WITHIN)
    s = await n.until(lambda s: len(s.pending_decisions) >= 1)
    # Standard tier (up to 100k) within the mandate: the path is the deal owner alone.
    assert {p.role for p in s.pending_decisions} == {Role.DEAL_OWNER}
    events = await _review_events(n, "development")
    scheduled_batches = {b for _, k, b in events if k.startswith("scheduled")}
    assert len(scheduled_batches) == 1, events  # both reviews scheduled in the same workflow task
    for p in s.pending_decisions:
        approver = {"deal_owner": "ana", "finance": "fay", "executive": "eve", "legal": "lee"}[
            p.role.value
        ]
        await n.decide(p.request_id, approver)
    await n.until(lambda s: s.movement.value == "closure")
    s = await n.until(lambda s: bool(s.pending_decisions))
    await n.decide(
        next(p for p in s.pending_decisions if p.kind == DecisionKind.SIGNATURE).request_id, "ana"
    )
    await n.respond("sign")
    result = await n.result()
    assert result.outcome == Outcome.AGREED
    assert result.agreed_terms.terms == WITHIN


async def test_collaborative_ensemble_one_refusal_ends_the_round_and_withdraws_the_other_requests(
    start,
):
    request = make_request(
        "collaborative_ensemble",
        opening_terms__total_contract_value="300000",
        mandate__total_contract_value={"target": "300000", "walk_away": "240000"},
    )
    n = await start(request)
    await n.until(lambda s: s.our_terms is not None)
    await n.respond("counter", terms(260000, 10, 45))
    s = await n.until(lambda s: len(s.pending_decisions) == 3)
    # Elevated tier: deal owner and finance; the owner's 100k authority is too low for 260k, so the
    # value approval escalates to the executive, while the owner still concurs as the conductor.
    assert {p.role for p in s.pending_decisions} == {Role.DEAL_OWNER, Role.FINANCE, Role.EXECUTIVE}
    finance = next(p for p in s.pending_decisions if p.role == Role.FINANCE)
    await n.decide(finance.request_id, "fay", "reject")
    result = await n.result()
    assert result.outcome == Outcome.WALKED_AWAY
    assert result.status.pending_decisions == []
