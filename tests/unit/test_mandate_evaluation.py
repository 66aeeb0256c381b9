"""evaluate() and position_of(): where terms sit against the mandate, term by term and overall."""

from __future__ import annotations

from decimal import Decimal

import pytest
from domain_builders import (
    any_value,
    at_target,
    at_walk_away,
    make_mandate,
    mandates,
    term_bounds,
    terms_from,
    terms_within,
    value_beyond,
    worse_than,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from negotiation.mandate import evaluate, position_of
from negotiation.terms import NUMERIC_TERMS, Mandate, Position, TermBound

MEETS, WITHIN, BEYOND = Position.MEETS_TARGET, Position.WITHIN_WALK_AWAY, Position.BEYOND_WALK_AWAY
RANK = {MEETS: 0, WITHIN: 1, BEYOND: 2}

SELLER = TermBound(target=Decimal(100), walk_away=Decimal(80))  # more is better
BUYER = TermBound(target=Decimal(80), walk_away=Decimal(100))  # less is better

FAST = settings(max_examples=80, deadline=None)


# --- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal(120), MEETS),  # better than target
        (Decimal(100), MEETS),
        (Decimal("99.99"), WITHIN),
        (Decimal(80), WITHIN),
        (Decimal("79.99"), BEYOND),
        (Decimal(0), BEYOND),
    ],
)
def test_position_when_higher_is_better(value: Decimal, expected: Position) -> None:
    assert position_of(value, SELLER) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal(50), MEETS),  # better than target
        (Decimal(80), MEETS),
        (Decimal("80.01"), WITHIN),
        (Decimal(100), WITHIN),
        (Decimal("100.01"), BEYOND),
    ],
)
def test_position_when_lower_is_better(value: Decimal, expected: Position) -> None:
    assert position_of(value, BUYER) == expected


def test_fixed_bound_accepts_the_value_and_better_but_nothing_worse() -> None:
    fixed = TermBound(target=Decimal(12), walk_away=Decimal(12))  # by convention more is better
    assert position_of(Decimal(12), fixed) == MEETS
    assert position_of(Decimal(13), fixed) == MEETS
    assert position_of(Decimal(11), fixed) == BEYOND


def test_example_opening_terms_meet_the_target() -> None:
    mandate = make_mandate(
        {
            "total_contract_value": ("60000", "48000"),
            "discount_pct": ("0", "12"),
            "payment_days": (30, 60),
            "term_months": (24, 12),
        }
    )
    ev = evaluate(at_target(mandate), mandate)
    assert ev.overall == MEETS
    assert ev.beyond == ()
    assert set(ev.by_term) == {
        "total_contract_value",
        "discount_pct",
        "payment_days",
        "term_months",
    }


def test_unbounded_terms_are_not_evaluated() -> None:
    mandate = make_mandate({"total_contract_value": (100, 80)})
    ev = evaluate(
        terms_from({"total_contract_value": Decimal(100), "payment_days": Decimal(365)}), mandate
    )
    assert list(ev.by_term) == ["total_contract_value"]
    assert ev.overall == MEETS


def test_clause_outside_the_mandate_is_beyond_walk_away_even_at_target() -> None:
    mandate = make_mandate({"total_contract_value": (100, 80)}, acceptable_clauses=("mfn",))
    ev = evaluate(at_target(mandate, ("mfn", "ip_assignment")), mandate)
    assert ev.unacceptable_clauses == ("ip_assignment",)
    assert ev.overall == BEYOND
    assert ev.beyond == ("non_standard_clauses",)


def test_clause_inside_the_mandate_does_not_affect_the_position() -> None:
    mandate = make_mandate({"total_contract_value": (100, 80)}, acceptable_clauses=("mfn",))
    ev = evaluate(at_target(mandate, ("mfn",)), mandate)
    assert ev.unacceptable_clauses == ()
    assert ev.overall == MEETS


def test_beyond_lists_terms_in_display_order_then_clauses() -> None:
    mandate = make_mandate(
        {"total_contract_value": (100, 80), "payment_days": (30, 60), "term_months": (24, 12)}
    )
    terms = terms_from(
        {
            "total_contract_value": Decimal(79),
            "payment_days": Decimal(61),
            "term_months": Decimal(24),
        },
        ("escrow",),
    )
    assert evaluate(terms, mandate).beyond == (
        "total_contract_value",
        "payment_days",
        "non_standard_clauses",
    )


# --- properties --------------------------------------------------------------------------------


@FAST
@given(st.data())
def test_value_equal_to_target_meets_target(data: st.DataObject) -> None:
    term = data.draw(st.sampled_from(NUMERIC_TERMS))
    bound = data.draw(term_bounds(term, allow_fixed=True))
    assert position_of(bound.target, bound) == MEETS


@FAST
@given(st.data())
def test_value_equal_to_walk_away_is_within_walk_away(data: st.DataObject) -> None:
    term = data.draw(st.sampled_from(NUMERIC_TERMS))
    bound = data.draw(term_bounds(term))
    assert position_of(bound.walk_away, bound) == WITHIN


@FAST
@given(st.data(), st.integers(1, 10_000))
def test_value_strictly_worse_than_walk_away_is_beyond(data: st.DataObject, units: int) -> None:
    term = data.draw(st.sampled_from(NUMERIC_TERMS))
    bound = data.draw(term_bounds(term, allow_fixed=True))
    assert position_of(worse_than(term, bound, bound.walk_away, units), bound) == BEYOND


@FAST
@given(st.data(), st.integers(1, 10_000))
def test_value_strictly_better_than_target_meets_target(data: st.DataObject, units: int) -> None:
    term = data.draw(st.sampled_from(NUMERIC_TERMS))
    bound = data.draw(term_bounds(term, allow_fixed=True))
    assert position_of(worse_than(term, bound, bound.target, -units), bound) == MEETS


@FAST
@given(st.data())
def test_position_is_monotone_in_how_good_the_value_is(data: st.DataObject) -> None:
    term = data.draw(st.sampled_from(NUMERIC_TERMS))
    bound = data.draw(term_bounds(term, allow_fixed=True))
    a, b = data.draw(any_value(term)), data.draw(any_value(term))
    assume(bound.better(a, b))
    assert RANK[position_of(a, bound)] <= RANK[position_of(b, bound)]


@FAST
@given(st.data())
def test_overall_is_the_worst_term(data: st.DataObject) -> None:
    mandate = data.draw(mandates())
    values = {}
    for term, bound in mandate.bounds().items():
        choices = [data.draw(any_value(term)), bound.target, bound.walk_away]
        beyond = value_beyond(term, bound)
        if beyond is not None:
            choices.append(data.draw(beyond))
        values[term] = data.draw(st.sampled_from(choices))
    ev = evaluate(terms_from(values), mandate)
    assert ev.by_term == {t: position_of(v, mandate.bounds()[t]) for t, v in values.items()}
    assert ev.overall == max(ev.by_term.values(), key=RANK.__getitem__)
    assert set(ev.beyond) == {t for t, p in ev.by_term.items() if p == BEYOND}


@FAST
@given(st.data())
def test_terms_between_walk_away_and_target_are_never_beyond(data: st.DataObject) -> None:
    mandate = data.draw(mandates())
    ev = evaluate(data.draw(terms_within(mandate)), mandate)
    assert ev.overall in (MEETS, WITHIN)
    assert ev.beyond == ()


@FAST
@given(mandates())
def test_terms_at_target_meet_it_and_terms_at_walk_away_are_within(mandate: Mandate) -> None:
    assert evaluate(at_target(mandate), mandate).overall == MEETS
    assert set(evaluate(at_walk_away(mandate), mandate).by_term.values()) == {WITHIN}
