"""Builders and hypothesis strategies shared by the unit tests of the ``negotiation`` package.

Not a test module: pytest puts this folder on ``sys.path``, so tests import it by name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from negotiation.models import NegotiationRequest
from negotiation.terms import INTEGER_TERMS, NUMERIC_TERMS, Mandate, TermBound, Terms

EXAMPLE_REQUEST = Path(__file__).resolve().parents[2] / "examples" / "automated_renewal.json"
DEADLINE = datetime(2027, 3, 31, 17, 0, tzinfo=UTC)

#: Allowed range of each numeric term, as the smallest unit (cents or whole days/months).
#: The total contract value is kept modest so that examples stay readable when they fail.
UNIT_RANGE: dict[str, tuple[int, int]] = {
    "total_contract_value": (0, 50_000_000),  # cents: 0 .. 500,000.00
    "discount_pct": (0, 10_000),  # cents of a percent: 0 .. 100.00
    "payment_days": (0, 365),
    "term_months": (1, 120),
    "liability_cap_multiple": (0, 10_000),  # 0 .. 100.00
}

#: Terms whose default value in :class:`Terms` is used when a test does not set them.
TERM_DEFAULTS: dict[str, Decimal] = {
    "discount_pct": Decimal(0),
    "payment_days": Decimal(30),
    "term_months": Decimal(12),
    "liability_cap_multiple": Decimal(1),
}


def from_units(term: str, units: int) -> Decimal:
    """A term value from its smallest unit (cents, or whole days/months)."""
    return Decimal(units) if term in INTEGER_TERMS else Decimal(units).scaleb(-2)


def to_units(term: str, value: Decimal) -> int:
    """The smallest-unit count of a term value that lies on the unit grid."""
    scaled = value if term in INTEGER_TERMS else value.scaleb(2)
    assert scaled == scaled.to_integral_value(), f"{term}={value} is off the unit grid"
    return int(scaled)


def terms_from(values: dict[str, Decimal], clauses: tuple[str, ...] = ()) -> Terms:
    """Terms built from Decimal values (integer terms converted), other terms defaulted."""
    data: dict[str, Any] = {
        name: int(v) if name in INTEGER_TERMS else v for name, v in values.items()
    }
    data.setdefault("total_contract_value", Decimal("100000.00"))
    return Terms(**data, non_standard_clauses=clauses)


def make_mandate(
    bounds: dict[str, tuple[str | int | Decimal, str | int | Decimal]],
    *,
    max_rounds: int = 10,
    acceptable_clauses: tuple[str, ...] = (),
) -> Mandate:
    """A mandate from ``{term: (target, walk_away)}``."""
    return Mandate(
        **{
            name: TermBound(target=Decimal(t), walk_away=Decimal(w))
            for name, (t, w) in bounds.items()
        },
        max_rounds=max_rounds,
        acceptable_clauses=acceptable_clauses,
        deadline=DEADLINE,
    )


def example_request_data() -> dict[str, Any]:
    """The parsed example request (a fresh dict each call, safe to modify)."""
    return json.loads(EXAMPLE_REQUEST.read_text())


def example_request(**overrides: Any) -> NegotiationRequest:
    """The example request, with top-level fields replaced."""
    return NegotiationRequest.model_validate({**example_request_data(), **overrides})


def worse_than(term: str, bound: TermBound, value: Decimal, units: int) -> Decimal:
    """``value`` moved ``units`` smallest units in the direction that is worse for us."""
    step = from_units(term, units)
    return value - step if bound.higher_is_better else value + step


# --------------------------------------------------------------------------------------------
# Hypothesis strategies
# --------------------------------------------------------------------------------------------


@st.composite
def term_bounds(draw: st.DrawFn, term: str, allow_fixed: bool = False) -> TermBound:
    """A bound on ``term`` inside the term's range, in either direction.

    Target and walk-away differ unless ``allow_fixed``, which sometimes makes them equal (a
    non-negotiable value; by convention more is then better).
    """
    lo, hi = UNIT_RANGE[term]
    if allow_fixed and draw(st.integers(0, 4)) == 0:
        fixed = from_units(term, draw(st.integers(lo, hi)))
        return TermBound(target=fixed, walk_away=fixed)
    a = draw(st.integers(lo, hi - 1))
    b = draw(st.integers(a + 1, hi))
    higher_is_better = draw(st.booleans())
    target, walk = (b, a) if higher_is_better else (a, b)
    return TermBound(target=from_units(term, target), walk_away=from_units(term, walk))


@st.composite
def mandates(
    draw: st.DrawFn,
    *,
    min_rounds: int = 2,
    max_rounds: int = 30,
    clauses: tuple[str, ...] = (),
    allow_fixed: bool = False,
) -> Mandate:
    """A valid mandate: contract value always bounded, other terms sometimes, both directions."""
    bounds = {"total_contract_value": draw(term_bounds("total_contract_value", allow_fixed))}
    for term in NUMERIC_TERMS[1:]:
        if draw(st.booleans()):
            bounds[term] = draw(term_bounds(term, allow_fixed))
    return Mandate(
        **bounds,
        max_rounds=draw(st.integers(min_rounds, max_rounds)),
        acceptable_clauses=clauses,
        deadline=DEADLINE,
    )


def value_between(term: str, bound: TermBound) -> st.SearchStrategy[Decimal]:
    """A value between the walk-away and the target, both included."""
    ends = sorted((to_units(term, bound.target), to_units(term, bound.walk_away)))
    return st.integers(*ends).map(lambda u: from_units(term, u))


def value_beyond(term: str, bound: TermBound) -> st.SearchStrategy[Decimal] | None:
    """A value strictly worse than the walk-away and inside the term's range, when one exists."""
    lo, hi = UNIT_RANGE[term]
    walk = to_units(term, bound.walk_away)
    if bound.higher_is_better:
        return None if walk <= lo else st.integers(lo, walk - 1).map(lambda u: from_units(term, u))
    return None if walk >= hi else st.integers(walk + 1, hi).map(lambda u: from_units(term, u))


def value_meeting_target(term: str, bound: TermBound) -> st.SearchStrategy[Decimal]:
    """The target or a better value, inside the term's range."""
    lo, hi = UNIT_RANGE[term]
    target = to_units(term, bound.target)
    ends = (target, hi) if bound.higher_is_better else (lo, target)
    return st.integers(*ends).map(lambda u: from_units(term, u))


def any_value(term: str) -> st.SearchStrategy[Decimal]:
    """Any value the term may take."""
    return st.integers(*UNIT_RANGE[term]).map(lambda u: from_units(term, u))


@st.composite
def terms_within(draw: st.DrawFn, mandate: Mandate, clauses: tuple[str, ...] = ()) -> Terms:
    """Terms with every bounded term between walk-away and target; unbounded terms arbitrary."""
    bounds = mandate.bounds()
    values: dict[str, Decimal] = {}
    for term in NUMERIC_TERMS:
        if term in bounds:
            values[term] = draw(value_between(term, bounds[term]))
        elif draw(st.booleans()):
            values[term] = draw(any_value(term))
    return terms_from(values, clauses)


def at_target(mandate: Mandate, clauses: tuple[str, ...] = ()) -> Terms:
    """Terms at the target on every bounded term, defaults elsewhere."""
    return terms_from({t: b.target for t, b in mandate.bounds().items()}, clauses)


def at_walk_away(mandate: Mandate) -> Terms:
    """Terms at the walk-away on every bounded term, defaults elsewhere."""
    return terms_from({t: b.walk_away for t, b in mandate.bounds().items()})
