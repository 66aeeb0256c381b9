"""Evaluation of any terms against the mandate, term by term."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from negotiation.terms import Mandate, Position, TermBound, Terms

_RANK = {Position.MEETS_TARGET: 0, Position.WITHIN_WALK_AWAY: 1, Position.BEYOND_WALK_AWAY: 2}


def position_of(value: Decimal, bound: TermBound) -> Position:
    """Where ``value`` sits between the bound's target and walk-away."""
    if value == bound.target or bound.better(value, bound.target):
        return Position.MEETS_TARGET
    if value == bound.walk_away or bound.better(value, bound.walk_away):
        return Position.WITHIN_WALK_AWAY
    return Position.BEYOND_WALK_AWAY


@dataclass(frozen=True)
class Evaluation:
    """The position of every bounded term, the clauses outside the mandate, and the overall verdict."""

    by_term: dict[str, Position]
    unacceptable_clauses: tuple[str, ...] = field(default=())

    @property
    def overall(self) -> Position:
        """The worst position of any term; clauses outside the mandate count as beyond walk-away."""
        worst = max(self.by_term.values(), key=_RANK.__getitem__, default=Position.MEETS_TARGET)
        if self.unacceptable_clauses:
            return Position.BEYOND_WALK_AWAY
        return worst

    @property
    def beyond(self) -> tuple[str, ...]:
        """Terms beyond walk-away, with 'non_standard_clauses' when a clause is outside the mandate."""
        names = tuple(n for n, p in self.by_term.items() if p == Position.BEYOND_WALK_AWAY)
        return names + (("non_standard_clauses",) if self.unacceptable_clauses else ())


def evaluate(terms: Terms, mandate: Mandate) -> Evaluation:
    """Evaluate ``terms`` against ``mandate``: meets target, within walk-away, or beyond, per term."""
    by_term = {name: position_of(terms.value_of(name), b) for name, b in mandate.bounds().items()}
    allowed = set(mandate.acceptable_clauses)
    outside = tuple(c for c in terms.non_standard_clauses if c not in allowed)
    return Evaluation(by_term=by_term, unacceptable_clauses=outside)
