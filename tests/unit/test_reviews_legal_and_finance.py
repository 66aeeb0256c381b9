"""review_clauses() (legal's clause playbook) and review_finance() (finance's approval matrix)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.models import DealType, Role
from negotiation.policy import Policy
from negotiation.reviews import SELL_SIDE, review_clauses, review_finance
from negotiation.terms import Terms

DEFAULT = Policy()
SELL = DealType.ENTERPRISE_SALE
BUY = DealType.SUPPLIER


def _terms(value: str = "50000", **changes: object) -> Terms:
    return Terms.model_validate({"total_contract_value": value, **changes})


# --- legal -------------------------------------------------------------------------------------


def test_supplier_deals_are_the_only_buy_side_deals() -> None:
    assert set(DealType) - SELL_SIDE == {DealType.SUPPLIER}


@pytest.mark.parametrize("deal_type", list(DealType))
def test_standard_contract_passes_legal_review(deal_type: DealType) -> None:
    found = review_clauses(_terms(), deal_type, DEFAULT)
    assert found.findings == ()
    assert found.risk_score == 0
    assert not found.counsel_must_sign
    assert not found.unacceptable


def test_fallback_clause_needs_counsel() -> None:
    found = review_clauses(_terms(non_standard_clauses=["mfn"]), SELL, DEFAULT)
    assert found.findings == ("clause 'mfn' is a fallback position",)
    assert found.risk_score == 15
    assert found.counsel_must_sign
    assert not found.unacceptable


def test_unacceptable_clause_is_flagged() -> None:
    found = review_clauses(_terms(non_standard_clauses=["ip_assignment"]), SELL, DEFAULT)
    assert found.findings == ("clause 'ip_assignment' is an unacceptable position",)
    assert found.risk_score == 40
    assert found.counsel_must_sign
    assert found.unacceptable


def test_clause_outside_the_playbook_needs_counsel() -> None:
    found = review_clauses(_terms(non_standard_clauses=["exclusivity"]), SELL, DEFAULT)
    assert found.findings == ("clause 'exclusivity' is not in the clause playbook",)
    assert found.risk_score == 25
    assert found.counsel_must_sign
    assert not found.unacceptable


@pytest.mark.parametrize(
    ("cap", "risk", "unacceptable"),
    [("1", 0, False), ("1.01", 20, False), ("3", 20, False), ("3.01", 50, True)],
)
def test_selling_a_higher_liability_cap_adds_risk(cap: str, risk: int, unacceptable: bool) -> None:
    found = review_clauses(_terms(liability_cap_multiple=cap), SELL, DEFAULT)
    assert found.risk_score == risk
    assert found.unacceptable == unacceptable
    assert found.counsel_must_sign == (risk > 0)


@pytest.mark.parametrize(
    ("cap", "risk", "unacceptable"),
    [("5", 0, False), ("1", 0, False), ("0.99", 20, False), ("0.5", 20, False), ("0.49", 50, True)],
)
def test_buying_with_a_lower_liability_cap_adds_risk(
    cap: str, risk: int, unacceptable: bool
) -> None:
    found = review_clauses(_terms(liability_cap_multiple=cap), BUY, DEFAULT)
    assert found.risk_score == risk
    assert found.unacceptable == unacceptable


def test_legal_risk_is_capped_at_100() -> None:
    clauses = ["unlimited_liability", "ip_assignment", "uncapped_indemnity"]
    found = review_clauses(
        _terms(non_standard_clauses=clauses, liability_cap_multiple="50"), SELL, DEFAULT
    )
    assert found.risk_score == 100
    assert len(found.findings) == 4


def test_clause_playbook_follows_the_policy_file() -> None:
    policy = Policy.from_mapping(
        {"clauses": {"fallback_clauses": ["exclusivity"], "standard_liability_max": 2}}
    )
    found = review_clauses(
        _terms(non_standard_clauses=["exclusivity"], liability_cap_multiple="2"), SELL, policy
    )
    assert found.findings == ("clause 'exclusivity' is a fallback position",)
    assert found.risk_score == 15


@settings(max_examples=60, deadline=None)
@given(
    clauses=st.lists(
        st.sampled_from(["mfn", "ip_assignment", "escrow", "source_escrow", "x1"]), unique=True
    ),
    cap=st.integers(0, 10_000).map(lambda n: Decimal(n) / 100),
    deal_type=st.sampled_from(list(DealType)),
)
def test_legal_findings_are_consistent(
    clauses: list[str], cap: Decimal, deal_type: DealType
) -> None:
    found = review_clauses(
        _terms(non_standard_clauses=clauses, liability_cap_multiple=cap), deal_type, DEFAULT
    )
    assert 0 <= found.risk_score <= 100
    assert found.counsel_must_sign == bool(found.findings)
    assert found.counsel_must_sign == (found.risk_score > 0)
    assert found.unacceptable == any("unacceptable" in f for f in found.findings)
    assert not any(ch.isdigit() for f in found.findings for ch in f.replace("x1", ""))  # no amounts


# --- finance -----------------------------------------------------------------------------------


def test_deal_within_the_approval_matrix_is_approved() -> None:
    found = review_finance(_terms("100000", discount_pct="10", payment_days=30), SELL, DEFAULT)
    assert found.approved
    assert found.required_role is None
    assert found.findings == ()
    # list price 111111.11..., cost 61111.11, capital 657.53 over 30 days at 8 %
    assert found.payment_cost == Decimal("657.53")
    assert found.margin_pct == Decimal("38.2")  # (100000 - 61111.11 - 657.53) / 1000


def test_payment_cost_is_capital_cost_over_the_payment_days() -> None:
    found = review_finance(_terms("365000", payment_days=10), BUY, DEFAULT)
    assert found.payment_cost == Decimal("800.00")  # 365000 * 8% * 10/365
    assert found.margin_pct is None


def test_discount_above_the_matrix_needs_finance_in_the_elevated_tier() -> None:
    found = review_finance(_terms("500000", discount_pct="21"), SELL, DEFAULT)
    assert not found.approved
    assert found.required_role == Role.FINANCE
    assert found.required_authority == Decimal(500000)
    assert "discount above the approval matrix" in found.findings


def test_breach_in_the_strategic_tier_needs_the_executive() -> None:
    found = review_finance(_terms("1000000.01", payment_days=90), SELL, DEFAULT)
    assert not found.approved
    assert found.required_role == Role.EXECUTIVE
    assert found.findings == ("payment days above the approval matrix",)


def test_breach_at_the_top_of_the_elevated_tier_needs_finance() -> None:
    found = review_finance(_terms("1000000", payment_days=90), SELL, DEFAULT)
    assert found.required_role == Role.FINANCE


def test_margin_below_the_matrix_needs_approval() -> None:
    found = review_finance(_terms("100000", discount_pct="40"), SELL, DEFAULT)
    assert found.margin_pct is not None
    assert found.margin_pct < 25
    assert "margin below the approval matrix" in found.findings


def test_full_discount_does_not_divide_by_zero() -> None:
    found = review_finance(_terms("1000", discount_pct="100"), SELL, DEFAULT)
    assert found.margin_pct is not None
    assert "discount above the approval matrix" in found.findings


def test_free_deal_has_no_margin() -> None:
    found = review_finance(_terms("0"), SELL, DEFAULT)
    assert found.margin_pct is None
    assert found.approved


def test_buying_with_short_payment_days_needs_approval() -> None:
    found = review_finance(_terms("50000", payment_days=29, discount_pct="90"), BUY, DEFAULT)
    assert found.findings == ("payment days below the approval matrix",)  # discount not checked
    assert found.required_role == Role.FINANCE


def test_finance_review_works_with_a_single_tier_policy() -> None:
    # Regression: a valid one-tier policy used to crash review_finance with an IndexError.
    policy = Policy.from_mapping(
        {"value_tiers": [{"name": "all", "up_to": None, "approvers": ["deal_owner"]}]}
    )
    found = review_finance(_terms("50000", discount_pct="50"), SELL, policy)
    assert not found.approved
    assert found.required_role == Role.EXECUTIVE  # every deal is in the top tier


def test_finance_matrix_follows_the_policy_file() -> None:
    policy = Policy.from_mapping({"finance": {"max_discount_pct": 50, "min_margin_pct": 0}})
    assert review_finance(_terms("100000", discount_pct="40"), SELL, policy).approved
