"""The organisation's negotiation policy and the pure decisions derived from it.

A policy file (YAML or JSON) overrides the defaults below field by field. The defaults are
three standard approval paths (standard, elevated, strategic), not seventeen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from negotiation.mandate import evaluate
from negotiation.models import DealType, NegotiationRequest, PlaybookName, Role, RoleCard
from negotiation.terms import Mandate, Terms


class ValueTier(BaseModel):
    """An approval path: deals up to ``up_to`` need these roles to commit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Name shown to people, e.g. 'elevated'.")
    up_to: Decimal | None = Field(
        description="Upper bound of total contract value; None for the last tier."
    )
    approvers: tuple[Role, ...] = Field(description="Roles that approve commitments in this tier.")
    decision_due_hours: float = Field(
        default=24,
        gt=0,
        description="How long an approver has to answer, in hours; fractions allowed (0.5: 30 minutes).",
    )


class PlaybookRules(BaseModel):
    """How the playbook is chosen when the request names none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    automated_max_value: Decimal = Field(
        default=Decimal(100_000), description="Automated up to this value."
    )
    automated_max_complexity: int = Field(
        default=0, ge=0, description="...and up to this complexity."
    )
    ensemble_min_value: Decimal = Field(
        default=Decimal(1_000_000), description="Ensemble from this value."
    )
    ensemble_min_complexity: int = Field(default=2, ge=1, description="...or from this complexity.")


class ConcessionPolicy(BaseModel):
    """The automated concession strategy's pace."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_step: Decimal = Field(
        default=Decimal("0.5"), gt=0, le=1, description="Share of the gap conceded in round 1."
    )
    decay: Decimal = Field(
        default=Decimal("0.6"),
        gt=0,
        lt=1,
        description="Each round concedes this share of the last.",
    )


class FinanceMatrix(BaseModel):
    """Thresholds above which finance approval must come from a person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_discount_pct: Decimal = Field(
        default=Decimal(20), description="Discount finance accepts unasked."
    )
    max_payment_days: int = Field(
        default=60, description="Payment days finance accepts unasked (sell side)."
    )
    min_payment_days: int = Field(
        default=30, description="Payment days we must at least get (buy side)."
    )
    min_margin_pct: Decimal = Field(
        default=Decimal(25), description="Lowest margin accepted unasked (sell side)."
    )
    cost_ratio: Decimal = Field(
        default=Decimal("0.55"), description="Our cost as a share of list price."
    )
    capital_cost_pct: Decimal = Field(
        default=Decimal(8), description="Yearly cost of capital, for payment terms."
    )


class ClausePlaybook(BaseModel):
    """Legal's positions on clauses and liability."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fallback_clauses: tuple[str, ...] = Field(
        default=("mfn", "extended_warranty", "step_in_rights", "source_escrow"),
        description="Acceptable with counsel's signature.",
    )
    unacceptable_clauses: tuple[str, ...] = Field(
        default=("unlimited_liability", "ip_assignment", "uncapped_indemnity"),
        description="Never acceptable without counsel overriding.",
    )
    standard_liability_max: Decimal = Field(
        default=Decimal(1), description="Cap multiple counsel accepts unasked."
    )
    fallback_liability_max: Decimal = Field(
        default=Decimal(3), description="Cap multiple acceptable with counsel."
    )


class Policy(BaseModel):
    """The whole policy: playbook choice, approval paths, routing, strategy, reviews."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(
        default="default-1", description="Shown in the history, so decisions can be audited."
    )
    value_tiers: tuple[ValueTier, ...] = Field(
        default=(
            ValueTier(name="standard", up_to=Decimal(100_000), approvers=(Role.DEAL_OWNER,)),
            ValueTier(
                name="elevated",
                up_to=Decimal(1_000_000),
                approvers=(Role.DEAL_OWNER, Role.FINANCE),
                decision_due_hours=48,
            ),
            ValueTier(
                name="strategic",
                up_to=None,
                approvers=(Role.DEAL_OWNER, Role.FINANCE, Role.EXECUTIVE),
                decision_due_hours=48,
            ),
        ),
        description="Approval paths by total contract value, lowest first; the last has no upper bound.",
    )
    deviation_roles: dict[str, Role] = Field(
        default={
            "total_contract_value": Role.FINANCE,
            "discount_pct": Role.FINANCE,
            "payment_days": Role.FINANCE,
            "term_months": Role.DEAL_OWNER,
            "liability_cap_multiple": Role.LEGAL,
            "non_standard_clauses": Role.LEGAL,
        },
        description="Who must approve a term beyond the walk-away (the executive approves any, too).",
    )
    playbook_rules: PlaybookRules = Field(default_factory=PlaybookRules)
    concession: ConcessionPolicy = Field(default_factory=ConcessionPolicy)
    finance: FinanceMatrix = Field(default_factory=FinanceMatrix)
    clauses: ClausePlaybook = Field(default_factory=ClausePlaybook)
    automated_signature_limit: Decimal = Field(
        default=Decimal(100_000),
        description="Automated deals up to this value are signed by policy.",
    )
    checkpoint_days: int = Field(
        default=7,
        ge=1,
        le=90,
        # Histories written before the rename carry the old name: both load.
        validation_alias=AliasChoices("checkpoint_days", "weekly_checkpoint_days"),
        description="Checkpoint cadence in days (time-sensitive: working days).",
    )
    escalate_to: dict[Role, Role] = Field(
        default={
            Role.DEAL_OWNER: Role.EXECUTIVE,
            Role.FINANCE: Role.EXECUTIVE,
            Role.LEGAL: Role.EXECUTIVE,
        },
        description="Next authority when a decision is not taken by twice its due time.",
    )
    counterparty_reminder_days: float = Field(
        default=5,
        gt=0,
        description="Remind a silent counterparty after this many days; fractions allowed (0.25: 6 hours).",
    )
    touchpoint_after_stalled_rounds: int = Field(
        default=2, ge=1, description="Propose a check-in after this many rounds without progress."
    )
    retrospective_days: int = Field(
        default=7, ge=0, description="How long participants have to answer the retrospective."
    )
    history_budget: int = Field(
        default=2_000,
        ge=50,
        le=10_000,
        description="History events after which a development run hands back to go on in a fresh "
        "run, and the negotiation continues-as-new (Temporal warns at 10,240). Lower it to see "
        "long negotiations roll over sooner.",
    )
    concerns: dict[Role, tuple[str, ...]] = Field(
        default={
            Role.LEGAL: ("liability_cap_multiple", "non_standard_clauses", "term_months"),
            Role.FINANCE: ("total_contract_value", "discount_pct", "payment_days"),
        },
        description="Terms each role's approval is about; roles not listed are about every term.",
    )

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Policy:
        if not self.value_tiers or self.value_tiers[-1].up_to is not None:
            raise ValueError("the last value tier must have no upper bound (up_to: null)")
        bounds = [t.up_to for t in self.value_tiers[:-1]]
        if any(b is None for b in bounds) or bounds != sorted(bounds):  # type: ignore[type-var]
            raise ValueError("value tiers must be ordered by up_to, lowest first")
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Policy:
        """Build a policy from a parsed policy file; missing fields keep their defaults."""
        return cls.model_validate(dict(data or {}))

    def tier_for(self, value: Decimal) -> ValueTier:
        """The approval path for a total contract value."""
        for tier in self.value_tiers:
            if tier.up_to is None or value <= tier.up_to:
                return tier
        return self.value_tiers[-1]  # unreachable: the last tier is unbounded


def complexity(request: NegotiationRequest) -> int:
    """A small integer: non-standard clauses, partnership structure and a large team add to it."""
    score = len(request.opening_terms.non_standard_clauses) + len(
        request.mandate.acceptable_clauses
    )
    if request.deal_type == DealType.PARTNERSHIP:
        score += 1
    if len(request.participants) > 5:
        score += 1
    return score


def select_playbook(request: NegotiationRequest, policy: Policy) -> PlaybookName:
    """The request's playbook, or the one the policy chooses by deal size and complexity."""
    if request.playbook is not None:
        return request.playbook
    rules = policy.playbook_rules
    # The deal's size is the larger of target and walk-away: a buyer's walk-away is its ceiling.
    bound = request.mandate.total_contract_value
    value = max(bound.target, bound.walk_away)
    cx = complexity(request)
    if value >= rules.ensemble_min_value or cx >= rules.ensemble_min_complexity:
        return PlaybookName.COLLABORATIVE_ENSEMBLE
    if value <= rules.automated_max_value and cx <= rules.automated_max_complexity:
        return PlaybookName.AUTOMATED
    return PlaybookName.CONDUCTOR_LED


class Requirement(BaseModel):
    """One approval needed before we commit to terms."""

    model_config = ConfigDict(frozen=True)

    role: Role = Field(description="Role that must approve.")
    min_authority: Decimal = Field(description="Authority limit the approver needs.")
    reason: str = Field(description="Why (names terms, never amounts).")
    override: bool = Field(
        default=False,
        description="Nobody present holds the authority: it goes to the highest, as an override.",
    )


def route_approvals(
    terms: Terms, mandate: Mandate, policy: Policy, playbook: PlaybookName
) -> list[Requirement]:
    """Which roles must approve committing to ``terms``, in the order they are asked.

    The value tier's path applies to people-led playbooks; the automated playbook needs people
    only for deviations. Every term beyond the walk-away adds the role that owns it and the
    executive. Roles that approve a value need authority for it; legal's approval is on form.
    """
    value = terms.total_contract_value
    tier = policy.tier_for(value)
    reasons: dict[Role, list[str]] = {}
    if playbook != PlaybookName.AUTOMATED:
        for role in tier.approvers:
            reasons.setdefault(role, []).append(f"{tier.name} approval path")
    beyond = evaluate(terms, mandate).beyond
    for term in beyond:
        reasons.setdefault(policy.deviation_roles.get(term, Role.EXECUTIVE), []).append(
            f"{term} beyond walk-away"
        )
    if beyond:
        reasons.setdefault(Role.EXECUTIVE, []).append("terms beyond the mandate")
    order = [Role.DEAL_OWNER, Role.LEGAL, Role.FINANCE, Role.EXECUTIVE, Role.IMPLEMENTATION]
    return [
        Requirement(
            role=role,
            min_authority=Decimal(0) if role == Role.LEGAL else value,
            reason="; ".join(reasons[role]),
        )
        for role in order
        if role in reasons
    ]


def resolve_authority(need: Requirement, participants: Sequence[RoleCard]) -> Requirement:
    """Send a requirement to whoever holds the authority for it.

    When nobody in the needed role has enough authority, the decision escalates to the
    executive; when no executive does either, to the participant with the highest authority.
    """

    def able(role: Role) -> bool:
        return any(p.role == role and p.authority_limit >= need.min_authority for p in participants)

    if able(need.role):
        return need
    if able(Role.EXECUTIVE):
        return need.model_copy(
            update={"role": Role.EXECUTIVE, "reason": f"{need.reason}; escalated for authority"}
        )
    top = max(participants, key=lambda p: p.authority_limit)
    return need.model_copy(
        update={
            "role": top.role,
            "min_authority": min(need.min_authority, top.authority_limit),
            "reason": f"{need.reason}; escalated to the highest authority present",
            "override": top.authority_limit < need.min_authority,
        }
    )


def merge_requirements(needs: Sequence[Requirement]) -> list[Requirement]:
    """One requirement per role, in first-asked order: the highest authority asked, all the reasons."""
    merged: dict[Role, Requirement] = {}
    for need in needs:
        seen = merged.get(need.role)
        merged[need.role] = (
            need
            if seen is None
            else Requirement(
                role=need.role,
                min_authority=max(seen.min_authority, need.min_authority),
                reason=f"{seen.reason}; {need.reason}",
                override=seen.override or need.override,
            )
        )
    return list(merged.values())


def requirements_for(
    terms: Terms, request: NegotiationRequest, policy: Policy, playbook: PlaybookName
) -> list[Requirement]:
    """The approvals committing to ``terms`` needs, each sent to whoever holds the authority."""
    routed = route_approvals(terms, request.mandate, policy, playbook)
    return merge_requirements([resolve_authority(n, request.participants) for n in routed])


def tier_floor(policy: Policy, value: Decimal) -> float:
    """The lower bound of the deal's approval tier: its size band, not its value (what the
    ``DealValue`` search attribute shows, so that no deal's value is visible there)."""
    floor = 0.0
    for tier in policy.value_tiers:
        if tier.up_to is None or value <= tier.up_to:
            return floor
        floor = float(tier.up_to)
    return floor
