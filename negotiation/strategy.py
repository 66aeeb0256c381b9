"""The automated concession strategy.

It never offers beyond the walk-away, concedes less each round than the round before, and
accepts whatever meets the target. Everything it decides is a pure function of its inputs, so
it is safe in workflow code and replays identically.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from negotiation.mandate import evaluate
from negotiation.policy import ConcessionPolicy
from negotiation.terms import INTEGER_TERMS, Mandate, Position, TermBound, Terms

_CENT = Decimal("0.01")
_ONE = Decimal(1)


class StrategyState(BaseModel):
    """What the strategy remembers between rounds: the last concession made on each term."""

    model_config = ConfigDict(frozen=True)

    last_concession: dict[str, Decimal] = Field(default_factory=dict)


class MoveKind(StrEnum):
    """The strategy's answer to a counteroffer."""

    ACCEPT = "accept"
    COUNTER = "counter"
    ESCALATE = "escalate"


class Move(BaseModel):
    """An answer, the terms it proposes (for a counter), why, and the state for next round."""

    model_config = ConfigDict(frozen=True)

    kind: MoveKind
    terms: Terms | None = None
    reason: str
    state: StrategyState


def _toward_us(value: Decimal, bound: TermBound, integer: bool) -> Decimal:
    """Round so that rounding never concedes more than computed."""
    quantum = _ONE if integer else _CENT
    mode = ROUND_CEILING if bound.higher_is_better else ROUND_FLOOR
    return value.quantize(quantum, rounding=mode)


def _concede(
    term: str,
    bound: TermBound,
    ours: Decimal,
    theirs: Decimal,
    rate: Decimal,
    previous: Decimal | None,
) -> Decimal:
    """Our next value on one term: a step toward theirs, never past the walk-away."""
    if not bound.better(ours, theirs):
        return theirs  # they offer at least as much as we ask: take it
    step = abs(theirs - ours) * rate
    if previous is not None:
        step = min(step, previous)
    sign = _ONE if theirs > ours else -_ONE
    proposed = _toward_us(ours + sign * step, bound, term in INTEGER_TERMS)
    if bound.better(bound.walk_away, proposed):
        proposed = bound.walk_away
    return proposed


def respond(
    mandate: Mandate,
    ours: Terms,
    theirs: Terms,
    round_no: int,
    pace: ConcessionPolicy,
    state: StrategyState | None = None,
) -> Move:
    """Answer the counterparty's ``theirs`` to our last offer ``ours`` in round ``round_no`` (1-based)."""
    state = state or StrategyState()
    ev = evaluate(theirs, mandate)
    if ev.overall == Position.MEETS_TARGET:
        return Move(
            kind=MoveKind.ACCEPT, reason="their offer meets the target on every term", state=state
        )
    if ev.overall == Position.BEYOND_WALK_AWAY:
        return Move(
            kind=MoveKind.ESCALATE,
            reason=f"beyond walk-away on {', '.join(ev.beyond)}",
            state=state,
        )
    if round_no >= mandate.max_rounds:
        return Move(kind=MoveKind.ACCEPT, reason="last round and within the mandate", state=state)

    rate = pace.first_step * pace.decay ** (round_no - 1)
    changes: dict[str, object] = {}
    concessions = dict(state.last_concession)
    for term in (
        "total_contract_value",
        "discount_pct",
        "payment_days",
        "term_months",
        "liability_cap_multiple",
    ):
        bound = mandate.bounds().get(term)
        our_v, their_v = ours.value_of(term), theirs.value_of(term)
        if bound is None:
            changes[term] = their_v  # not in the mandate: we do not negotiate it
            continue
        new_v = _concede(term, bound, our_v, their_v, rate, state.last_concession.get(term))
        if new_v != their_v and new_v != our_v:
            concessions[term] = abs(new_v - our_v)
        changes[term] = int(new_v) if term in INTEGER_TERMS else new_v
    changes["non_standard_clauses"] = theirs.non_standard_clauses  # all within the mandate here
    counter = ours.replace(**changes)
    if counter == theirs:
        return Move(kind=MoveKind.ACCEPT, reason="our positions have converged", state=state)
    return Move(
        kind=MoveKind.COUNTER,
        terms=counter,
        reason=f"round {round_no} concession within the mandate",
        state=StrategyState(last_concession=concessions),
    )
