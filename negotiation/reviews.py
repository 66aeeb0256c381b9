"""Legal's clause playbook and finance's approval matrix, as pure rules.

The ``legal_review`` and ``finance_approval`` activities are thin adapters around these.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from negotiation.models import DealType, Role
from negotiation.policy import Policy
from negotiation.terms import Terms

SELL_SIDE = frozenset({DealType.ENTERPRISE_SALE, DealType.RENEWAL, DealType.PARTNERSHIP})


class LegalFindings(BaseModel):
    """What legal review found."""

    model_config = ConfigDict(frozen=True)

    findings: tuple[str, ...] = Field(description="One line per issue, no amounts.")
    risk_score: int = Field(ge=0, le=100, description="0 (none) to 100 (severe).")
    counsel_must_sign: bool = Field(description="A lawyer must sign off before signature.")
    unacceptable: bool = Field(description="An unacceptable position is present.")


class FinanceFindings(BaseModel):
    """What finance approval found."""

    model_config = ConfigDict(frozen=True)

    approved: bool = Field(description="Within the approval matrix; no person needed.")
    required_role: Role | None = Field(
        default=None, description="Who must approve when not approved."
    )
    required_authority: Decimal = Field(
        default=Decimal(0), description="Authority the approver needs."
    )
    margin_pct: Decimal | None = Field(default=None, description="Estimated margin (sell side).")
    payment_cost: Decimal = Field(description="Cost of capital tied up by the payment terms.")
    findings: tuple[str, ...] = Field(default=(), description="Thresholds breached, no amounts.")


def review_clauses(terms: Terms, deal_type: DealType, policy: Policy) -> LegalFindings:
    """Check clauses against the clause playbook and the liability cap against the policy."""
    book = policy.clauses
    findings: list[str] = []
    risk = 0
    must_sign = False
    unacceptable = False
    for clause in terms.non_standard_clauses:
        if clause in book.unacceptable_clauses:
            findings.append(f"clause '{clause}' is an unacceptable position")
            risk, must_sign, unacceptable = risk + 40, True, True
        elif clause in book.fallback_clauses:
            findings.append(f"clause '{clause}' is a fallback position")
            risk, must_sign = risk + 15, True
        else:
            findings.append(f"clause '{clause}' is not in the clause playbook")
            risk, must_sign = risk + 25, True
    cap = terms.liability_cap_multiple
    if deal_type in SELL_SIDE:
        fallback, beyond = cap > book.standard_liability_max, cap > book.fallback_liability_max
    else:  # buying: a low cap on the supplier's liability is our risk
        fallback = cap < book.standard_liability_max
        beyond = cap < book.standard_liability_max / 2
    if beyond:
        findings.append("liability cap is an unacceptable position")
        risk, must_sign, unacceptable = risk + 50, True, True
    elif fallback:
        findings.append("liability cap is a fallback position")
        risk, must_sign = risk + 20, True
    return LegalFindings(
        findings=tuple(findings),
        risk_score=min(risk, 100),
        counsel_must_sign=must_sign,
        unacceptable=unacceptable,
    )


def review_finance(terms: Terms, deal_type: DealType, policy: Policy) -> FinanceFindings:
    """Margin, discount and the cost of payment terms against the approval matrix."""
    matrix = policy.finance
    value = terms.total_contract_value
    payment_cost = (value * matrix.capital_cost_pct / 100 * terms.payment_days / 365).quantize(
        Decimal("0.01")
    )
    findings: list[str] = []
    margin: Decimal | None = None
    if deal_type in SELL_SIDE:
        if terms.discount_pct > matrix.max_discount_pct:
            findings.append("discount above the approval matrix")
        if terms.payment_days > matrix.max_payment_days:
            findings.append("payment days above the approval matrix")
        if value > 0:
            list_price = (
                value / (1 - terms.discount_pct / 100) if terms.discount_pct < 100 else value
            )
            margin = (
                (value - list_price * matrix.cost_ratio - payment_cost) / value * 100
            ).quantize(Decimal("0.1"))
            if margin < matrix.min_margin_pct:
                findings.append("margin below the approval matrix")
    elif terms.payment_days < matrix.min_payment_days:
        findings.append("payment days below the approval matrix")
    if not findings:
        return FinanceFindings(approved=True, margin_pct=margin, payment_cost=payment_cost)
    top = policy.value_tiers[-1]
    # The top tier starts above the tier below it; a single-tier policy has none below (floor 0).
    below_top = policy.value_tiers[-2].up_to if len(policy.value_tiers) > 1 else None
    role = Role.EXECUTIVE if top.up_to is None and value > (below_top or 0) else Role.FINANCE
    return FinanceFindings(
        approved=False,
        required_role=role,
        required_authority=value,
        margin_pct=margin,
        payment_cost=payment_cost,
        findings=tuple(findings),
    )
