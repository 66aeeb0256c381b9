"""legal_review and finance_approval: findings through the activity edge, and bad data refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.reviews import ReviewInput, finance_approval, legal_review
from negotiation.models import DealType, Role
from negotiation.policy import Policy
from negotiation.terms import Terms


def review_input(deal_type: DealType = DealType.ENTERPRISE_SALE, **terms: Any) -> ReviewInput:
    return ReviewInput(
        negotiation_id="sale-contoso-2027",
        terms_version=3,
        terms=Terms(**{"total_contract_value": Decimal("250000.00"), **terms}),
        deal_type=deal_type,
        policy=Policy(),
    )


async def test_legal_review_finds_fallback_and_unacceptable_clauses(
    activity_env: ActivityEnvironment,
) -> None:
    inp = review_input(non_standard_clauses=("mfn", "unlimited_liability"))

    found = await activity_env.run(legal_review, inp)

    assert found.findings == (
        "clause 'mfn' is a fallback position",
        "clause 'unlimited_liability' is an unacceptable position",
    )
    assert found.counsel_must_sign and found.unacceptable
    assert found.risk_score == 55


async def test_legal_review_of_fallback_clause_needs_counsel_but_is_acceptable(
    activity_env: ActivityEnvironment,
) -> None:
    found = await activity_env.run(
        legal_review, review_input(non_standard_clauses=("source_escrow",))
    )

    assert found.counsel_must_sign and not found.unacceptable


async def test_legal_review_of_standard_terms_finds_nothing(
    activity_env: ActivityEnvironment,
) -> None:
    found = await activity_env.run(legal_review, review_input())

    assert found.findings == () and found.risk_score == 0 and not found.counsel_must_sign


async def test_finance_approval_flags_breached_thresholds(
    activity_env: ActivityEnvironment,
) -> None:
    inp = review_input(discount_pct=Decimal(30), payment_days=90)

    found = await activity_env.run(finance_approval, inp)

    assert not found.approved
    assert "discount above the approval matrix" in found.findings
    assert "payment days above the approval matrix" in found.findings
    assert found.required_role == Role.FINANCE
    assert found.required_authority == Decimal("250000.00")


async def test_finance_approval_within_the_matrix_is_approved(
    activity_env: ActivityEnvironment,
) -> None:
    found = await activity_env.run(finance_approval, review_input(discount_pct=Decimal(5)))

    assert found.approved and found.findings == ()


async def test_finance_approval_on_buy_side_checks_payment_days_we_get(
    activity_env: ActivityEnvironment,
) -> None:
    found = await activity_env.run(
        finance_approval, review_input(DealType.SUPPLIER, payment_days=10)
    )

    assert found.findings == ("payment days below the approval matrix",)


@pytest.mark.parametrize("activity_fn", [legal_review, finance_approval])
async def test_bad_review_input_is_non_retryable_and_does_not_quote_the_terms(
    activity_env: ActivityEnvironment, activity_fn: Any
) -> None:
    raw = review_input().model_dump(mode="json")
    raw["terms"]["discount_pct"] = "987.65"  # above 100 %
    raw["deal_type"] = "barter"

    with pytest.raises(ApplicationError) as caught:
        await activity_env.run(activity_fn, raw)

    assert (caught.value.type, caught.value.non_retryable) == ("InvalidReviewInput", True)
    assert "terms.discount_pct" in caught.value.message and "deal_type" in caught.value.message
    assert "987.65" not in caught.value.message  # failure messages are stored in clear text


async def test_review_input_from_a_valid_mapping_is_accepted(
    activity_env: ActivityEnvironment,
) -> None:
    raw = review_input(non_standard_clauses=("mfn",)).model_dump(mode="json")

    found = await activity_env.run(legal_review, raw)  # type: ignore[arg-type]

    assert found.counsel_must_sign
