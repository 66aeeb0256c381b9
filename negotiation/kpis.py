"""Deal quality, compliance and the KPIs every negotiation yields."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from negotiation.models import (
    Compliance,
    DealType,
    DecisionRecord,
    Kpis,
    MovementSpan,
    Verdict,
)
from negotiation.policy import Policy, Requirement
from negotiation.reviews import review_clauses
from negotiation.terms import Mandate, TermBound, Terms

_ECONOMIC = ("total_contract_value", "discount_pct", "payment_days")


def _score(value: Decimal, bound: TermBound) -> Decimal:
    """0 at the walk-away, 100 at the target or better, linear between; 0 beyond the walk-away."""
    span = bound.target - bound.walk_away
    if span == 0:  # a fixed value: at it or better is the target, anything worse is beyond
        return Decimal(0) if bound.better(bound.target, value) else Decimal(100)
    share = (value - bound.walk_away) / span
    return max(Decimal(0), min(Decimal(1), share)) * 100


def deal_quality(terms: Terms, mandate: Mandate, deal_type: DealType, policy: Policy) -> int:
    """A score from 0 to 100: profitability (50%), risk (30%) and feasibility (20%)."""
    bounds = mandate.bounds()
    economic = [_score(terms.value_of(t), bounds[t]) for t in _ECONOMIC if t in bounds]
    profitability = sum(economic, Decimal(0)) / len(economic) if economic else Decimal(100)
    risk = Decimal(100 - review_clauses(terms, deal_type, policy).risk_score)
    feasibility = (
        _score(terms.value_of("term_months"), bounds["term_months"])
        if "term_months" in bounds
        else Decimal(100)
    )
    feasibility = max(Decimal(0), feasibility - 10 * len(terms.non_standard_clauses))
    total = profitability * Decimal("0.5") + risk * Decimal("0.3") + feasibility * Decimal("0.2")
    return int(total.quantize(Decimal(1)))


def assess_compliance(
    required: Sequence[Requirement],
    decisions: Sequence[DecisionRecord],
    terms_version: int,
    deadline: datetime | None,
) -> Compliance:
    """Every required approval obtained, on the committed terms version, from enough authority,
    no later than ``deadline`` (the moment it mattered), and none of them an override."""
    violations: list[str] = []
    for need in required:
        if need.override:
            violations.append(
                f"{need.role.value} approval was an override: nobody held the authority ({need.reason})"
            )
        approvals = [
            d
            for d in decisions
            if d.role == need.role
            and d.verdict == Verdict.APPROVE
            and d.terms_version == terms_version
        ]
        if not approvals:
            violations.append(
                f"no {need.role.value} approval on terms version {terms_version} ({need.reason})"
            )
            continue
        # Only an approval with enough authority counts, so it is that one that must be in time.
        sufficient = [d for d in approvals if d.approver_authority >= need.min_authority]
        if not sufficient:
            violations.append(f"{need.role.value} approval came from insufficient authority")
        elif deadline is not None and not any(d.at <= deadline for d in sufficient):
            violations.append(f"{need.role.value} approval came after the commitment")
    return Compliance(compliant=not violations, violations=tuple(violations))


def compute_kpis(
    *,
    started_at: datetime,
    closed_at: datetime,
    spans: Sequence[MovementSpan],
    rounds: int,
    quality: int | None,
    decisions: Sequence[DecisionRecord],
    automated_responses: int,
    compliance: Compliance,
    satisfaction: float | None = None,
) -> Kpis:
    """Assemble the KPIs from what the negotiation recorded."""
    # A standing approval carried to a new version is not a new decision by anyone.
    human = sum(1 for d in decisions if d.approver != "policy" and d.carried_from is None)
    answered = human + automated_responses
    return Kpis(
        cycle_time_seconds=(closed_at - started_at).total_seconds(),
        movement_seconds={
            s.movement.value: ((s.ended_at or closed_at) - s.started_at).total_seconds()
            for s in spans
        },
        rounds=rounds,
        deal_quality=quality,
        human_decisions=human,
        automated_responses=automated_responses,
        internal_efficiency=round(automated_responses / answered, 3) if answered else 1.0,
        compliance=compliance,
        stakeholder_satisfaction=satisfaction,
    )
