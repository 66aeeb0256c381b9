"""Validation of the domain's messages and value objects: bad input fails early and says why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from domain_builders import DEADLINE, example_request, example_request_data, make_mandate
from pydantic import ValidationError

from negotiation.models import (
    CounterpartyAction,
    CounterpartyResponse,
    DealType,
    HumanDecision,
    NegotiationRequest,
    Role,
    RoleCard,
    Verdict,
)
from negotiation.terms import Mandate, Offer, Party, TermBound, Terms

TERMS = Terms(total_contract_value=Decimal("1000.00"))


def _request_with(**changes: object) -> dict[str, object]:
    return {**example_request_data(), **changes}


def _participant(name: str, role: str, limit: str = "0") -> dict[str, str]:
    return {
        "name": name,
        "role": role,
        "authority_limit": limit,
        "email": f"{name}@fitnest.example",
    }


# --- the example request ---------------------------------------------------------------------


def test_example_request_file_is_a_valid_request() -> None:
    request = example_request()
    assert request.negotiation_id == "renewal-northwind-2027"
    assert request.deal_type == DealType.RENEWAL
    assert request.mandate.max_rounds == 6
    assert request.mandate.deadline == DEADLINE
    assert set(request.mandate.bounds()) == {
        "total_contract_value",
        "discount_pct",
        "payment_days",
        "term_months",
    }


def test_example_request_mandate_directions_follow_target_versus_walk_away() -> None:
    bounds = example_request().mandate.bounds()
    assert bounds["total_contract_value"].higher_is_better  # a seller's price
    assert not bounds["discount_pct"].higher_is_better  # less discount is better
    assert not bounds["payment_days"].higher_is_better  # paid sooner is better
    assert bounds["term_months"].higher_is_better  # a longer contract is better


def test_participant_lookup_by_name() -> None:
    request = example_request()
    card = request.participant("fay")
    assert card is not None
    assert card.role == Role.FINANCE
    assert request.participant("nobody") is None


def test_holders_of_a_role_are_sorted_by_authority_highest_first() -> None:
    participants = [
        _participant("ana", "deal_owner", "100"),
        _participant("bo", "finance", "10"),
        _participant("cy", "finance", "1000"),
        _participant("di", "finance", "500"),
    ]
    request = NegotiationRequest.model_validate(_request_with(participants=participants))
    assert [p.name for p in request.holders(Role.FINANCE)] == ["cy", "di", "bo"]
    assert request.holders(Role.EXECUTIVE) == []


# --- NegotiationRequest consistency ------------------------------------------------------------


def test_duplicate_participant_names_are_rejected() -> None:
    participants = [_participant("ana", "deal_owner"), _participant("ana", "finance")]
    with pytest.raises(ValidationError, match="participant names must be unique"):
        NegotiationRequest.model_validate(_request_with(participants=participants))


def test_request_without_a_deal_owner_is_rejected() -> None:
    participants = [_participant("lee", "legal"), _participant("fay", "finance")]
    with pytest.raises(ValidationError, match="must include a deal_owner"):
        NegotiationRequest.model_validate(_request_with(participants=participants))


def test_request_without_participants_is_rejected() -> None:
    with pytest.raises(ValidationError, match="participants"):
        NegotiationRequest.model_validate(_request_with(participants=[]))


def test_opening_terms_beyond_walk_away_are_rejected_naming_the_terms() -> None:
    data = example_request_data()
    # Walk-away is 48000 (higher is better) and 60 payment days (lower is better).
    data["opening_terms"] = {**data["opening_terms"], "total_contract_value": "47999.99"}
    data["opening_terms"]["payment_days"] = 61
    with pytest.raises(
        ValidationError, match="beyond the walk-away on: total_contract_value, payment_days"
    ):
        NegotiationRequest.model_validate(data)


def test_opening_terms_exactly_at_walk_away_are_accepted() -> None:
    data = example_request_data()
    data["opening_terms"] = {
        "total_contract_value": "48000",
        "discount_pct": "12",
        "payment_days": 60,
        "term_months": 12,
    }
    assert NegotiationRequest.model_validate(data).opening_terms.total_contract_value == 48000


def test_opening_clause_outside_the_mandate_is_rejected() -> None:
    data = example_request_data()
    data["opening_terms"] = {**data["opening_terms"], "non_standard_clauses": ["mfn"]}
    with pytest.raises(ValidationError, match="non_standard_clauses"):
        NegotiationRequest.model_validate(data)


def test_opening_clause_accepted_when_the_mandate_allows_it() -> None:
    data = example_request_data()
    data["opening_terms"] = {**data["opening_terms"], "non_standard_clauses": ["MFN"]}
    data["mandate"] = {**data["mandate"], "acceptable_clauses": ["mfn"]}
    request = NegotiationRequest.model_validate(data)
    assert request.opening_terms.non_standard_clauses == ("mfn",)


@pytest.mark.parametrize("currency", ["eur", "EURO", "EU", "E1R", "", " EUR"])
def test_bad_currency_code_is_rejected(currency: str) -> None:
    with pytest.raises(ValidationError, match="currency"):
        NegotiationRequest.model_validate(_request_with(currency=currency))


@pytest.mark.parametrize(
    "negotiation_id", ["Renewal-2027", "a", "has space", "-leading-dash", "x" * 129]
)
def test_bad_negotiation_id_is_rejected(negotiation_id: str) -> None:
    with pytest.raises(ValidationError, match="negotiation_id"):
        NegotiationRequest.model_validate(_request_with(negotiation_id=negotiation_id))


def test_unknown_request_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="budget"):
        NegotiationRequest.model_validate(_request_with(budget="lots"))


def test_unknown_deal_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="deal_type"):
        NegotiationRequest.model_validate(_request_with(deal_type="barter"))


# --- role cards --------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.de", "@c.de"])
def test_role_card_with_bad_email_is_rejected(email: str) -> None:
    with pytest.raises(ValidationError, match="not an e-mail address"):
        RoleCard(name="ana", role=Role.DEAL_OWNER, email=email)


def test_role_card_with_negative_authority_is_rejected() -> None:
    with pytest.raises(ValidationError, match="authority_limit"):
        RoleCard(
            name="ana", role=Role.DEAL_OWNER, email="ana@x.example", authority_limit=Decimal(-1)
        )


def test_role_card_authority_defaults_to_zero() -> None:
    assert RoleCard(name="lee", role=Role.LEGAL, email="lee@x.example").authority_limit == 0


# --- mandate -----------------------------------------------------------------------------------


def test_naive_deadline_is_rejected() -> None:
    with pytest.raises(ValidationError, match="deadline must carry a timezone"):
        Mandate(
            total_contract_value=TermBound(target=Decimal(10), walk_away=Decimal(5)),
            deadline=datetime(2027, 3, 31, 17, 0),  # naive on purpose
        )


def test_aware_deadline_is_accepted() -> None:
    mandate = Mandate(
        total_contract_value=TermBound(target=Decimal(10), walk_away=Decimal(5)),
        deadline=datetime(2027, 3, 31, 17, 0, tzinfo=UTC),
    )
    assert mandate.deadline.tzinfo is not None


def test_mandate_requires_a_contract_value_bound() -> None:
    with pytest.raises(ValidationError, match="total_contract_value"):
        Mandate(deadline=DEADLINE)  # type: ignore[call-arg]


@pytest.mark.parametrize("max_rounds", [0, -1, 1001])
def test_mandate_round_limit_out_of_range_is_rejected(max_rounds: int) -> None:
    with pytest.raises(ValidationError, match="max_rounds"):
        make_mandate({"total_contract_value": (10, 5)}, max_rounds=max_rounds)


def test_mandate_bounds_lists_only_bounded_terms_in_display_order() -> None:
    mandate = make_mandate(
        {"term_months": (24, 12), "total_contract_value": (10, 5), "payment_days": (30, 60)}
    )
    assert list(mandate.bounds()) == ["total_contract_value", "payment_days", "term_months"]


def test_term_bound_direction_follows_target_versus_walk_away() -> None:
    seller = TermBound(target=Decimal(100), walk_away=Decimal(80))
    buyer = TermBound(target=Decimal(80), walk_away=Decimal(100))
    assert seller.higher_is_better
    assert seller.better(Decimal(90), Decimal(85))
    assert not seller.better(Decimal(85), Decimal(90))
    assert not buyer.higher_is_better
    assert buyer.better(Decimal(85), Decimal(90))
    assert not buyer.better(Decimal(90), Decimal(90))  # strictly better only


# --- terms and clause ids ----------------------------------------------------------------------


@pytest.mark.parametrize("clause", ["", "   ", "has space", "semi;colon", "x" * 65, "ünïcode-ok?"])
def test_bad_clause_id_is_rejected(clause: str) -> None:
    with pytest.raises(ValidationError, match="a clause id is 1-64 letters"):
        Terms(total_contract_value=Decimal(1), non_standard_clauses=(clause,))


def test_bad_clause_id_in_mandate_is_rejected() -> None:
    with pytest.raises(ValidationError, match="a clause id is 1-64 letters"):
        make_mandate({"total_contract_value": (10, 5)}, acceptable_clauses=("no good",))


def test_clause_ids_are_normalised_to_lower_case_without_spaces() -> None:
    terms = Terms(
        total_contract_value=Decimal(1), non_standard_clauses=("  MFN ", "Source_Escrow", "x" * 64)
    )
    assert terms.non_standard_clauses == ("mfn", "source_escrow", "x" * 64)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("total_contract_value", "-0.01"),
        ("total_contract_value", "10.001"),
        ("total_contract_value", "1000000000000.01"),
        ("discount_pct", "100.01"),
        ("discount_pct", "-1"),
        ("payment_days", 366),
        ("payment_days", -1),
        ("term_months", 0),
        ("term_months", 121),
        ("liability_cap_multiple", "100.5"),
        ("liability_cap_multiple", "1.005"),
    ],
)
def test_term_value_outside_its_range_is_rejected(field: str, value: object) -> None:
    data = {"total_contract_value": "1000", field: value}
    with pytest.raises(ValidationError, match=field):
        Terms.model_validate(data)


def test_terms_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="price"):
        Terms.model_validate({"total_contract_value": "1", "price": "2"})


def test_terms_defaults_are_standard_contract_terms() -> None:
    terms = Terms(total_contract_value=Decimal("10"))
    assert (terms.discount_pct, terms.payment_days, terms.term_months) == (0, 30, 12)
    assert terms.liability_cap_multiple == 1
    assert terms.non_standard_clauses == ()


def test_terms_are_immutable() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        TERMS.payment_days = 10  # type: ignore[misc]


def test_terms_replace_returns_a_validated_copy() -> None:
    changed = TERMS.replace(payment_days=45)
    assert changed.payment_days == 45
    assert TERMS.payment_days == 30
    with pytest.raises(ValidationError, match="payment_days"):
        TERMS.replace(payment_days=400)


def test_value_of_returns_a_decimal_for_every_numeric_term() -> None:
    assert TERMS.value_of("payment_days") == Decimal(30)
    assert isinstance(TERMS.value_of("term_months"), Decimal)
    assert TERMS.value_of("total_contract_value") == Decimal("1000.00")


def test_offer_version_counts_from_one() -> None:
    with pytest.raises(ValidationError, match="version"):
        Offer(version=0, party=Party.US, round=0, terms=TERMS, at=DEADLINE)
    assert Offer(version=1, party=Party.THEM, round=0, terms=TERMS, at=DEADLINE).version == 1


# --- counterparty responses --------------------------------------------------------------------


def test_counter_without_terms_is_rejected() -> None:
    with pytest.raises(ValidationError, match="a 'counter' response must carry terms"):
        CounterpartyResponse(message_id="m1", sequence=1, action=CounterpartyAction.COUNTER)


def test_counter_with_terms_is_accepted() -> None:
    response = CounterpartyResponse(
        message_id="m1", sequence=1, action=CounterpartyAction.COUNTER, terms=TERMS
    )
    assert response.terms == TERMS


@pytest.mark.parametrize(
    "action",
    [
        CounterpartyAction.ACCEPT,
        CounterpartyAction.REJECT,
        CounterpartyAction.WITHDRAW,
        CounterpartyAction.SIGN,
    ],
)
def test_non_counter_responses_need_no_terms(action: CounterpartyAction) -> None:
    assert CounterpartyResponse(message_id="m1", sequence=1, action=action).terms is None


@pytest.mark.parametrize(
    ("field", "value"), [("sequence", 0), ("message_id", ""), ("note", "x" * 2001)]
)
def test_counterparty_response_field_limits(field: str, value: object) -> None:
    data = {"message_id": "m1", "sequence": 1, "action": "accept", field: value}
    with pytest.raises(ValidationError, match=field):
        CounterpartyResponse.model_validate(data)


# --- human decisions ---------------------------------------------------------------------------


def test_revise_without_revised_terms_is_rejected() -> None:
    with pytest.raises(ValidationError, match="a 'revise' verdict must carry revised_terms"):
        HumanDecision(message_id="m", request_id="r", approver="ana", verdict=Verdict.REVISE)


def test_revise_with_revised_terms_is_accepted() -> None:
    decision = HumanDecision(
        message_id="m", request_id="r", approver="ana", verdict=Verdict.REVISE, revised_terms=TERMS
    )
    assert decision.revised_terms == TERMS


@pytest.mark.parametrize("verdict", [Verdict.APPROVE, Verdict.REJECT])
def test_revised_terms_without_revise_verdict_are_rejected(verdict: Verdict) -> None:
    with pytest.raises(ValidationError, match="revised_terms go only with a 'revise' verdict"):
        HumanDecision(
            message_id="m", request_id="r", approver="ana", verdict=verdict, revised_terms=TERMS
        )


def test_decision_terms_version_counts_from_one() -> None:
    with pytest.raises(ValidationError, match="terms_version"):
        HumanDecision(
            message_id="m", request_id="r", approver="ana", verdict=Verdict.APPROVE, terms_version=0
        )


def test_unknown_verdict_is_rejected() -> None:
    with pytest.raises(ValidationError, match="verdict"):
        HumanDecision.model_validate(
            {"message_id": "m", "request_id": "r", "approver": "ana", "verdict": "maybe"}
        )
