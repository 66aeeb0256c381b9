"""deal_quality(), assess_compliance() and compute_kpis()."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from domain_builders import (
    any_value,
    at_target,
    example_request,
    make_mandate,
    mandates,
    terms_from,
    terms_within,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from negotiation.kpis import assess_compliance, compute_kpis, deal_quality
from negotiation.models import (
    Compliance,
    DealType,
    DecisionKind,
    DecisionRecord,
    Movement,
    MovementSpan,
    Role,
    Verdict,
)
from negotiation.policy import Policy, Requirement
from negotiation.reviews import review_clauses
from negotiation.terms import INTEGER_TERMS, NUMERIC_TERMS, Mandate, Terms

DEFAULT = Policy()
FAST = settings(max_examples=80, deadline=None)
ECONOMIC = ("total_contract_value", "discount_pct", "payment_days")
T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)

RENEWAL = example_request().mandate  # TCV 60000/48000, discount 0/12, days 30/60, months 24/12


def _renewal_terms(tcv: str, discount: str, days: int, months: int, *clauses: str) -> Terms:
    return Terms(
        total_contract_value=Decimal(tcv),
        discount_pct=Decimal(discount),
        payment_days=days,
        term_months=months,
        non_standard_clauses=clauses,
    )


# --- deal quality: examples --------------------------------------------------------------------


def test_example_opening_terms_score_full_quality() -> None:
    request = example_request()
    assert deal_quality(request.opening_terms, request.mandate, request.deal_type, DEFAULT) == 100


def test_terms_at_walk_away_score_only_the_risk_share() -> None:
    terms = _renewal_terms("48000", "12", 60, 12)
    # profitability 0 * 0.5 + risk 100 * 0.3 + feasibility 0 * 0.2
    assert deal_quality(terms, RENEWAL, DealType.RENEWAL, DEFAULT) == 30


def test_terms_halfway_score_halfway_on_profitability_and_feasibility() -> None:
    terms = _renewal_terms("54000", "6", 45, 18)
    assert deal_quality(terms, RENEWAL, DealType.RENEWAL, DEFAULT) == 65  # 25 + 30 + 10


def test_terms_beyond_walk_away_score_no_lower_than_at_walk_away() -> None:
    terms = _renewal_terms("1000", "50", 200, 1)
    assert deal_quality(terms, RENEWAL, DealType.RENEWAL, DEFAULT) == 30


def test_non_standard_clauses_lower_quality() -> None:
    mandate = RENEWAL.model_copy(update={"acceptable_clauses": ("mfn",)})
    terms = _renewal_terms("60000", "0", 30, 24, "mfn")
    # risk 100 - 15 = 85 (fallback clause); feasibility 100 - 10 per clause
    assert deal_quality(terms, mandate, DealType.RENEWAL, DEFAULT) == 94  # 50 + 25.5 + 18


def test_liability_risk_lowers_quality() -> None:
    terms = _renewal_terms("60000", "0", 30, 24).replace(liability_cap_multiple=Decimal(5))
    assert deal_quality(terms, RENEWAL, DealType.RENEWAL, DEFAULT) == 85  # risk 50


def test_unbounded_economic_terms_count_as_full_profitability() -> None:
    mandate = make_mandate({"total_contract_value": ("100", "50"), "term_months": (24, 12)})
    terms = terms_from({"total_contract_value": Decimal(75), "term_months": Decimal(24)})
    assert deal_quality(terms, mandate, DealType.RENEWAL, DEFAULT) == 75  # 25 + 30 + 20


def test_value_at_or_better_than_a_fixed_target_scores_full() -> None:
    # Regression: with target == walk-away, a better value used to score 0 instead of 100.
    mandate = make_mandate({"total_contract_value": ("1000", "1000")})
    at = deal_quality(
        terms_from({"total_contract_value": Decimal(1000)}), mandate, DealType.RENEWAL, DEFAULT
    )
    better = deal_quality(
        terms_from({"total_contract_value": Decimal(2000)}), mandate, DealType.RENEWAL, DEFAULT
    )
    worse = deal_quality(
        terms_from({"total_contract_value": Decimal(999)}), mandate, DealType.RENEWAL, DEFAULT
    )
    assert at == better == 100
    assert worse == 50  # profitability 0


# --- deal quality: properties ------------------------------------------------------------------


@st.composite
def any_terms(draw: st.DrawFn) -> Terms:
    values = {term: draw(any_value(term)) for term in NUMERIC_TERMS}
    clauses = draw(
        st.lists(st.sampled_from(["mfn", "ip_assignment", "escrow", "unlimited_liability"]))
    )
    return terms_from(values, tuple(dict.fromkeys(clauses)))


@FAST
@given(
    mandate=mandates(allow_fixed=True),
    terms=any_terms(),
    deal_type=st.sampled_from(list(DealType)),
)
def test_deal_quality_is_always_an_int_between_0_and_100(
    mandate: Mandate, terms: Terms, deal_type: DealType
) -> None:
    quality = deal_quality(terms, mandate, deal_type, DEFAULT)
    assert type(quality) is int
    assert 0 <= quality <= 100


@FAST
@given(mandate=mandates(allow_fixed=True), deal_type=st.sampled_from(list(DealType)))
def test_deal_quality_is_full_at_target_without_clauses(
    mandate: Mandate, deal_type: DealType
) -> None:
    terms = at_target(mandate)
    quality = deal_quality(terms, mandate, deal_type, DEFAULT)
    risk = review_clauses(terms, deal_type, DEFAULT).risk_score
    if risk == 0:
        assert quality == 100
    assert quality >= 85  # only the liability cap's legal risk can take anything off


@FAST
@given(st.data(), st.sampled_from(list(DealType)))
def test_strictly_better_economic_value_never_lowers_deal_quality(
    data: st.DataObject, deal_type: DealType
) -> None:
    mandate = data.draw(mandates(allow_fixed=True, clauses=("mfn",)))
    terms = data.draw(
        st.one_of(terms_within(mandate, data.draw(st.sampled_from([(), ("mfn",)]))), any_terms())
    )
    bounded = [t for t in ECONOMIC if t in mandate.bounds()]
    term = data.draw(st.sampled_from(bounded))
    bound = mandate.bounds()[term]
    new = data.draw(any_value(term))
    assume(bound.better(new, terms.value_of(term)))
    better = terms.replace(**{term: int(new) if term in INTEGER_TERMS else new})
    assert deal_quality(better, mandate, deal_type, DEFAULT) >= deal_quality(
        terms, mandate, deal_type, DEFAULT
    )


# --- compliance --------------------------------------------------------------------------------

FINANCE = Requirement(
    role=Role.FINANCE, min_authority=Decimal(500_000), reason="elevated approval path"
)
LEGAL = Requirement(role=Role.LEGAL, min_authority=Decimal(0), reason="liability beyond walk-away")
DEADLINE = T0 + timedelta(days=3)


def _approval(
    role: Role = Role.FINANCE,
    *,
    authority: int = 1_000_000,
    version: int = 4,
    at: datetime = T0,
    verdict: Verdict = Verdict.APPROVE,
    approver: str = "fay",
) -> DecisionRecord:
    return DecisionRecord(
        request_id=f"r-{role.value}-{approver}",
        kind=DecisionKind.FINANCE_SIGNOFF,
        role=role,
        approver=approver,
        approver_authority=Decimal(authority),
        verdict=verdict,
        terms_version=version,
        at=at,
    )


def test_all_approvals_in_time_from_enough_authority_is_compliant() -> None:
    decisions = [_approval(), _approval(Role.LEGAL, authority=0, approver="lee")]
    assert assess_compliance([FINANCE, LEGAL], decisions, 4, DEADLINE) == Compliance(compliant=True)


def test_no_requirements_is_compliant() -> None:
    assert assess_compliance([], [], 1, DEADLINE).compliant


def test_missing_approval_is_a_violation() -> None:
    result = assess_compliance([FINANCE, LEGAL], [_approval()], 4, DEADLINE)
    assert not result.compliant
    assert result.violations == (
        "no legal approval on terms version 4 (liability beyond walk-away)",
    )


def test_approval_of_another_terms_version_is_a_violation() -> None:
    result = assess_compliance([FINANCE], [_approval(version=3)], 4, DEADLINE)
    assert result.violations == ("no finance approval on terms version 4 (elevated approval path)",)


@pytest.mark.parametrize("verdict", [Verdict.REJECT, Verdict.REVISE])
def test_a_verdict_other_than_approve_is_no_approval(verdict: Verdict) -> None:
    result = assess_compliance([FINANCE], [_approval(verdict=verdict)], 4, DEADLINE)
    assert not result.compliant
    assert result.violations[0].startswith("no finance approval")


def test_approval_by_another_role_does_not_count() -> None:
    result = assess_compliance([FINANCE], [_approval(Role.EXECUTIVE)], 4, DEADLINE)
    assert result.violations[0].startswith("no finance approval")


def test_approval_from_insufficient_authority_is_a_violation() -> None:
    result = assess_compliance([FINANCE], [_approval(authority=499_999)], 4, DEADLINE)
    assert result.violations == ("finance approval came from insufficient authority",)


def test_approval_after_the_deadline_is_a_violation() -> None:
    late = _approval(at=DEADLINE + timedelta(seconds=1))
    result = assess_compliance([FINANCE], [late], 4, DEADLINE)
    assert result.violations == ("finance approval came after the commitment",)


def test_approval_exactly_at_the_deadline_is_in_time() -> None:
    assert assess_compliance([FINANCE], [_approval(at=DEADLINE)], 4, DEADLINE).compliant


def test_without_a_deadline_timing_is_not_checked() -> None:
    late = _approval(at=DEADLINE + timedelta(days=100))
    assert assess_compliance([FINANCE], [late], 4, None).compliant


def test_one_good_approval_among_bad_ones_is_enough() -> None:
    decisions = [
        _approval(authority=10, approver="fin"),
        _approval(version=3),
        _approval(approver="fay"),
    ]
    assert assess_compliance([FINANCE], decisions, 4, DEADLINE).compliant


def test_late_able_approval_and_early_unable_one_is_still_a_violation() -> None:
    # Regression: timing used to be checked across all approvals, so an in-time approval from
    # too little authority covered for a late one from enough authority.
    decisions = [
        _approval(authority=1_000_000, at=DEADLINE + timedelta(hours=1), approver="fay"),
        _approval(authority=10, at=DEADLINE - timedelta(hours=1), approver="fin"),
    ]
    result = assess_compliance([FINANCE], decisions, 4, DEADLINE)
    assert result.violations == ("finance approval came after the commitment",)


def test_every_violation_is_listed_in_requirement_order() -> None:
    executive = Requirement(role=Role.EXECUTIVE, min_authority=Decimal(10), reason="beyond mandate")
    decisions = [_approval(authority=1), _approval(Role.EXECUTIVE, at=DEADLINE + timedelta(days=1))]
    result = assess_compliance([FINANCE, LEGAL, executive], decisions, 4, DEADLINE)
    assert result.violations == (
        "finance approval came from insufficient authority",
        "no legal approval on terms version 4 (liability beyond walk-away)",
        "executive approval came after the commitment",
    )


@FAST
@given(
    needs=st.lists(
        st.tuples(st.sampled_from(list(Role)), st.integers(0, 10**7)), min_size=0, max_size=5
    ),
    version=st.integers(1, 50),
    slack=st.integers(0, 10**6),
)
def test_matching_approvals_in_time_are_always_compliant(
    needs: list[tuple[Role, int]], version: int, slack: int
) -> None:
    required = [Requirement(role=r, min_authority=Decimal(n), reason="r") for r, n in needs]
    decisions = [
        _approval(r, authority=n + slack, version=version, at=DEADLINE - timedelta(seconds=slack))
        for r, n in needs
    ]
    assert assess_compliance(required, decisions, version, DEADLINE).compliant


# --- KPIs --------------------------------------------------------------------------------------


def _decision(approver: str) -> DecisionRecord:
    return _approval(approver=approver)


def test_kpis_measure_cycle_time_and_each_movement() -> None:
    spans = [
        MovementSpan(
            movement=Movement.PREPARATION, started_at=T0, ended_at=T0 + timedelta(hours=1)
        ),
        MovementSpan(movement=Movement.OPENING, started_at=T0 + timedelta(hours=1), ended_at=None),
    ]
    kpis = compute_kpis(
        started_at=T0,
        closed_at=T0 + timedelta(days=1),
        spans=spans,
        rounds=3,
        quality=88,
        decisions=[],
        automated_responses=0,
        compliance=Compliance(compliant=True),
    )
    assert kpis.cycle_time_seconds == 86_400
    # An open movement ends at the close.
    assert kpis.movement_seconds == {"preparation": 3_600, "opening": 82_800}
    assert kpis.rounds == 3
    assert kpis.deal_quality == 88
    assert kpis.stakeholder_satisfaction is None


def test_kpis_count_people_not_policy_decisions() -> None:
    decisions = [_decision("fay"), _decision("policy"), _decision("ana")]
    kpis = compute_kpis(
        started_at=T0,
        closed_at=T0,
        spans=[],
        rounds=2,
        quality=None,
        decisions=decisions,
        automated_responses=6,
        compliance=Compliance(compliant=True),
        satisfaction=4.5,
    )
    assert kpis.human_decisions == 2
    assert kpis.automated_responses == 6
    assert kpis.internal_efficiency == 0.75  # 6 of 8 answers without a person
    assert kpis.deal_quality is None
    assert kpis.stakeholder_satisfaction == 4.5


def test_internal_efficiency_is_full_when_nothing_was_answered() -> None:
    kpis = compute_kpis(
        started_at=T0,
        closed_at=T0,
        spans=[],
        rounds=0,
        quality=None,
        decisions=[_decision("policy")],
        automated_responses=0,
        compliance=Compliance(compliant=False, violations=("x",)),
    )
    assert kpis.internal_efficiency == 1.0
    assert kpis.human_decisions == 0
    assert kpis.compliance.violations == ("x",)


def test_internal_efficiency_is_rounded_to_three_places() -> None:
    kpis = compute_kpis(
        started_at=T0,
        closed_at=T0,
        spans=[],
        rounds=0,
        quality=None,
        decisions=[_decision("fay")] * 2,
        automated_responses=1,
        compliance=Compliance(compliant=True),
    )
    assert kpis.internal_efficiency == 0.333


def test_an_approval_that_had_to_go_below_the_required_authority_is_an_override_violation():
    from datetime import UTC, datetime
    from decimal import Decimal

    from negotiation.kpis import assess_compliance
    from negotiation.models import DecisionKind, DecisionRecord, Role, Verdict
    from negotiation.policy import Requirement

    need = Requirement(role=Role.FINANCE, min_authority=Decimal(500), reason="value", override=True)
    at = datetime(2027, 1, 1, tzinfo=UTC)
    approval = DecisionRecord(
        request_id="r",
        kind=DecisionKind.ESCALATION,
        role=Role.FINANCE,
        approver="fay",
        approver_authority=Decimal(500),
        verdict=Verdict.APPROVE,
        terms_version=2,
        at=at,
    )
    result = assess_compliance([need], [approval], 2, at)
    assert not result.compliant
    assert "override" in result.violations[0]
    clean = assess_compliance([need.model_copy(update={"override": False})], [approval], 2, at)
    assert clean.compliant
