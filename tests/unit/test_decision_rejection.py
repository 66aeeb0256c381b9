"""rejection_reason(): which human decisions the ``decide`` validator turns away, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from domain_builders import make_mandate

from negotiation.decisions import rejection_reason
from negotiation.models import (
    DecisionKind,
    DecisionRecord,
    DecisionRequest,
    HumanDecision,
    Movement,
    Role,
    RoleCard,
    Verdict,
)
from negotiation.terms import Terms

NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)

TEAM = (
    RoleCard(
        name="ana", role=Role.DEAL_OWNER, authority_limit=Decimal(100_000), email="ana@x.example"
    ),
    RoleCard(
        name="fay", role=Role.FINANCE, authority_limit=Decimal(1_000_000), email="fay@x.example"
    ),
    RoleCard(name="fin", role=Role.FINANCE, authority_limit=Decimal(10_000), email="fin@x.example"),
    RoleCard(name="lee", role=Role.LEGAL, email="lee@x.example"),
)

REQUEST = DecisionRequest(
    request_id="development-r2-finance",
    kind=DecisionKind.FINANCE_SIGNOFF,
    role=Role.FINANCE,
    required_authority=Decimal(500_000),
    reason="elevated approval path",
    terms_version=4,
    movement=Movement.DEVELOPMENT,
    created_at=NOW,
)


def _decision(approver: str = "fay", **changes: object) -> HumanDecision:
    data: dict[str, object] = {
        "message_id": "msg-1",
        "request_id": REQUEST.request_id,
        "approver": approver,
        "verdict": Verdict.APPROVE,
        "terms_version": 4,
        **changes,
    }
    return HumanDecision.model_validate(data)


def _taken(verdict: Verdict = Verdict.APPROVE, approver: str = "fay") -> DecisionRecord:
    return DecisionRecord(
        request_id=REQUEST.request_id,
        kind=REQUEST.kind,
        role=REQUEST.role,
        approver=approver,
        approver_authority=Decimal(1_000_000),
        verdict=verdict,
        terms_version=4,
        at=NOW,
    )


def test_valid_decision_is_accepted() -> None:
    assert rejection_reason(_decision(), REQUEST, None, TEAM) is None


def test_decision_without_a_terms_version_is_about_the_requested_version() -> None:
    assert rejection_reason(_decision(terms_version=None), REQUEST, None, TEAM) is None


@pytest.mark.parametrize("verdict", [Verdict.APPROVE, Verdict.REJECT])
def test_every_verdict_is_accepted_by_default(verdict: Verdict) -> None:
    assert rejection_reason(_decision(verdict=verdict), REQUEST, None, TEAM) is None


def test_decision_for_an_unknown_request_is_rejected() -> None:
    reason = rejection_reason(_decision(request_id="nope"), None, None, TEAM)
    assert reason == "unknown decision request nope: nothing is waiting for it"


def test_decision_for_an_already_decided_request_is_rejected() -> None:
    reason = rejection_reason(_decision("ana"), REQUEST, _taken(Verdict.REJECT), TEAM)
    assert reason == f"decision request {REQUEST.request_id} was already decided (reject by fay)"


def test_already_decided_wins_over_unknown_once_the_request_is_no_longer_pending() -> None:
    reason = rejection_reason(_decision(), None, _taken(), TEAM)
    assert reason is not None
    assert "already decided (approve by fay)" in reason


def test_decision_on_a_stale_terms_version_is_rejected() -> None:
    reason = rejection_reason(_decision(terms_version=3), REQUEST, None, TEAM)
    assert reason == f"stale terms version 3: request {REQUEST.request_id} is about version 4"


def test_decision_on_a_newer_terms_version_is_rejected_too() -> None:
    reason = rejection_reason(_decision(terms_version=5), REQUEST, None, TEAM)
    assert reason is not None
    assert reason.startswith("stale terms version 5")


def test_decision_by_a_non_participant_is_rejected() -> None:
    reason = rejection_reason(_decision("mallory"), REQUEST, None, TEAM)
    assert reason == "mallory is not a participant in this negotiation"


def test_decision_by_the_wrong_role_is_rejected() -> None:
    reason = rejection_reason(_decision("ana"), REQUEST, None, TEAM)
    assert reason == "ana holds the role deal_owner; this request needs finance"


def test_decision_by_insufficient_authority_is_rejected() -> None:
    reason = rejection_reason(_decision("fin"), REQUEST, None, TEAM)
    assert reason == f"fin's authority limit is below what request {REQUEST.request_id} requires"


def test_authority_exactly_at_the_requirement_is_enough() -> None:
    request = REQUEST.model_copy(update={"required_authority": Decimal(1_000_000)})
    assert rejection_reason(_decision("fay"), request, None, TEAM) is None


def test_legal_decision_needs_no_authority() -> None:
    request = REQUEST.model_copy(
        update={
            "role": Role.LEGAL,
            "required_authority": Decimal(0),
            "kind": DecisionKind.LEGAL_SIGNOFF,
        }
    )
    assert rejection_reason(_decision("lee"), request, None, TEAM) is None


def test_verdict_the_request_does_not_take_is_rejected() -> None:
    request = REQUEST.model_copy(update={"verdicts": (Verdict.APPROVE, Verdict.REJECT)})
    revise = _decision(verdict=Verdict.REVISE, revised_terms=Terms(total_contract_value=Decimal(1)))
    reason = rejection_reason(revise, request, None, TEAM)
    assert reason is not None
    assert "approve, reject" in reason


def test_revised_terms_beyond_the_mandate_are_rejected_when_a_mandate_is_given() -> None:
    mandate = make_mandate({"total_contract_value": ("600000", "500000")})
    beyond = _decision(verdict=Verdict.REVISE, revised_terms=Terms(total_contract_value=Decimal(1)))
    within = _decision(
        verdict=Verdict.REVISE, revised_terms=Terms(total_contract_value=Decimal(550_000))
    )
    reason = rejection_reason(beyond, REQUEST, None, TEAM, mandate)
    assert reason is not None
    assert "total_contract_value" in reason
    assert rejection_reason(within, REQUEST, None, TEAM, mandate) is None
    assert rejection_reason(beyond, REQUEST, None, TEAM) is None  # no mandate: not checked
