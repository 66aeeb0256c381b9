"""Legal review and finance approval: thin adapters around :mod:`negotiation.reviews`.

Today both are pure rule evaluations; they are activities anyway because their real counterparts
(a contract-review service, an ERP approval matrix) live outside the workflow, and because the
findings then sit in the history as the record of what was reviewed, under which policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

from activities.errors import InvalidReviewInput, activity_edge, parse_input
from activities.log import logger
from negotiation.models import DealType, Identifier
from negotiation.policy import Policy
from negotiation.reviews import FinanceFindings, LegalFindings, review_clauses, review_finance
from negotiation.terms import Terms

_F = TypeVar("_F", LegalFindings, FinanceFindings)


class ReviewInput(BaseModel):
    """What legal review and finance approval look at: one terms version, under one policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    negotiation_id: Identifier = Field(
        description="The negotiation (workflow id) the terms belong to."
    )
    terms_version: int = Field(ge=1, description="Version of the terms reviewed, for the record.")
    terms: Terms = Field(description="The terms to review.")
    deal_type: DealType = Field(
        description="Kind of deal: decides which side of a term is our risk."
    )
    policy: Policy = Field(description="The policy loaded at the start of the negotiation.")


def _reviewed(
    inp: ReviewInput, rule: Callable[[Terms, DealType, Policy], _F]
) -> tuple[ReviewInput, _F]:
    """The input, validated again when it did not arrive as a model, and what ``rule`` finds."""
    with activity_edge():
        checked = parse_input(ReviewInput, inp, InvalidReviewInput)
        return checked, rule(checked.terms, checked.deal_type, checked.policy)


@activity.defn
async def legal_review(inp: ReviewInput) -> LegalFindings:
    """Check the clauses and the liability cap against legal's clause playbook.

    Raises a non-retryable ``ApplicationError`` of type ``InvalidReviewInput`` for bad data.
    """
    inp, findings = _reviewed(inp, review_clauses)
    logger(__name__, negotiation_id=inp.negotiation_id, terms_version=inp.terms_version).info(
        "review.legal.completed",
        risk_score=findings.risk_score,
        findings=len(findings.findings),
        counsel_must_sign=findings.counsel_must_sign,
        unacceptable=findings.unacceptable,
    )
    return findings


@activity.defn
async def finance_approval(inp: ReviewInput) -> FinanceFindings:
    """Check discount, payment days and margin against finance's approval matrix.

    Raises a non-retryable ``ApplicationError`` of type ``InvalidReviewInput`` for bad data.
    """
    inp, findings = _reviewed(inp, review_finance)
    # Margin and payment cost are amounts: they stay in the result, never in the log.
    logger(__name__, negotiation_id=inp.negotiation_id, terms_version=inp.terms_version).info(
        "review.finance.completed",
        approved=findings.approved,
        required_role=findings.required_role,
        findings=len(findings.findings),
    )
    return findings
