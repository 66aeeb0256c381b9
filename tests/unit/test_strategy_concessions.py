"""The automated concession strategy: respond() to a counteroffer, round by round."""

from __future__ import annotations

from decimal import Decimal

from domain_builders import (
    any_value,
    at_target,
    make_mandate,
    mandates,
    terms_from,
    terms_within,
    value_between,
    value_beyond,
    value_meeting_target,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from negotiation.mandate import evaluate
from negotiation.policy import ConcessionPolicy
from negotiation.strategy import Move, MoveKind, StrategyState, respond
from negotiation.terms import INTEGER_TERMS, NUMERIC_TERMS, Mandate, Position, Terms

PACE = ConcessionPolicy()  # first step 0.5 of the gap, each round 0.6 of the last
FAST = settings(max_examples=60, deadline=None)

# The example renewal: a seller's price, a discount and payment days we want low, a long term.
RENEWAL = make_mandate(
    {
        "total_contract_value": ("60000", "48000"),
        "discount_pct": ("0", "12"),
        "payment_days": (30, 60),
        "term_months": (24, 12),
    },
    max_rounds=6,
)
OPENING = at_target(RENEWAL)


def _their(**values: str | int) -> Terms:
    base = {
        "total_contract_value": "60000",
        "discount_pct": "0",
        "payment_days": 30,
        "term_months": 24,
    }
    data = {**base, **values}
    return Terms.model_validate(data)


def paces() -> st.SearchStrategy[ConcessionPolicy]:
    """Any valid concession pace: first step in (0, 1], decay in (0, 1)."""
    return st.builds(
        ConcessionPolicy,
        first_step=st.integers(1, 100).map(lambda n: Decimal(n) / 100),
        decay=st.integers(1, 99).map(lambda n: Decimal(n) / 100),
    )


@st.composite
def their_offers(draw: st.DrawFn, mandate: Mandate) -> Terms:
    """Counteroffers: mostly within the walk-away term by term, sometimes anything at all."""
    values = {}
    for term in NUMERIC_TERMS:
        bound = mandate.bounds().get(term)
        if bound is not None and draw(st.integers(0, 9)) < 8:
            values[term] = draw(value_between(term, bound))
        elif bound is not None or draw(st.booleans()):
            values[term] = draw(any_value(term))
    return terms_from(values)


def _between(x: Decimal, a: Decimal, b: Decimal) -> bool:
    return min(a, b) <= x <= max(a, b)


# --- examples ----------------------------------------------------------------------------------


def test_offer_meeting_the_target_is_accepted() -> None:
    move = respond(RENEWAL, OPENING, _their(total_contract_value="61000"), 1, PACE)
    assert move.kind == MoveKind.ACCEPT
    assert move.terms is None
    assert "meets the target" in move.reason


def test_counteroffer_beyond_walk_away_escalates() -> None:
    theirs = _their(total_contract_value="47000", payment_days=90)
    move = respond(RENEWAL, OPENING, theirs, 1, PACE)
    assert move.kind == MoveKind.ESCALATE
    assert move.terms is None
    assert move.reason == "beyond walk-away on total_contract_value, payment_days"


def test_counteroffer_with_a_clause_outside_the_mandate_escalates() -> None:
    theirs = _their().replace(non_standard_clauses=("unlimited_liability",))
    move = respond(RENEWAL, OPENING, theirs, 1, PACE)
    assert move.kind == MoveKind.ESCALATE
    assert "non_standard_clauses" in move.reason


def test_counteroffer_beyond_walk_away_escalates_even_in_the_last_round() -> None:
    theirs = _their(total_contract_value="40000")
    assert respond(RENEWAL, OPENING, theirs, RENEWAL.max_rounds, PACE).kind == MoveKind.ESCALATE


def test_offer_within_the_mandate_is_accepted_in_the_last_round() -> None:
    theirs = _their(total_contract_value="50000", payment_days=45)
    move = respond(RENEWAL, OPENING, theirs, RENEWAL.max_rounds, PACE)
    assert move.kind == MoveKind.ACCEPT
    assert move.reason == "last round and within the mandate"


def test_offer_within_the_mandate_is_countered_before_the_last_round() -> None:
    theirs = _their(total_contract_value="50000")
    move = respond(RENEWAL, OPENING, theirs, RENEWAL.max_rounds - 1, PACE)
    assert move.kind == MoveKind.COUNTER


def test_first_round_concedes_the_first_step_share_of_the_gap() -> None:
    theirs = _their(
        total_contract_value="50000", discount_pct="10", payment_days=45, term_months=12
    )
    move = respond(RENEWAL, OPENING, theirs, 1, PACE)
    assert move.kind == MoveKind.COUNTER
    assert move.terms is not None
    assert move.terms.total_contract_value == Decimal("55000.00")
    assert move.terms.discount_pct == Decimal("5.00")
    assert move.terms.payment_days == 37  # 37.5 rounded toward us: fewer days
    assert move.terms.term_months == 18
    assert move.reason == "round 1 concession within the mandate"


def test_integer_terms_round_toward_us_and_stay_integers() -> None:
    theirs = _their(total_contract_value="50000", payment_days=45, term_months=13)
    move = respond(RENEWAL, OPENING, theirs, 1, PACE)
    assert move.terms is not None
    # 24 -> 13 conceding half is 18.5: rounding up keeps the longer term, which is better for us.
    assert move.terms.term_months == 19
    assert isinstance(move.terms.payment_days, int)
    assert isinstance(move.terms.term_months, int)


def test_second_round_concedes_less_than_the_first() -> None:
    theirs = _their(total_contract_value="50000", payment_days=45)
    first = respond(RENEWAL, OPENING, theirs, 1, PACE)
    assert first.terms is not None
    second = respond(RENEWAL, first.terms, theirs, 2, PACE, first.state)
    assert second.terms is not None
    assert second.terms.total_contract_value == Decimal("53500.00")  # 5000 * 0.3 conceded
    assert second.terms.payment_days == 39  # 8 * 0.3 = 2.4, rounded toward us to 2


def test_strategy_state_remembers_the_last_concession_per_term() -> None:
    theirs = _their(total_contract_value="50000", payment_days=45)
    move = respond(RENEWAL, OPENING, theirs, 1, PACE)
    assert move.state == StrategyState(
        last_concession={"total_contract_value": Decimal("5000.00"), "payment_days": Decimal(7)}
    )


def test_previous_concession_caps_the_next_one() -> None:
    theirs = _their(total_contract_value="50000")
    state = StrategyState(last_concession={"total_contract_value": Decimal(100)})
    move = respond(RENEWAL, OPENING, theirs, 1, PACE, state)
    assert move.terms is not None
    assert move.terms.total_contract_value == Decimal("59900.00")


def test_accept_and_escalate_keep_the_state() -> None:
    state = StrategyState(last_concession={"total_contract_value": Decimal(100)})
    assert respond(RENEWAL, OPENING, _their(), 1, PACE, state).state == state
    beyond = _their(total_contract_value="1")
    assert respond(RENEWAL, OPENING, beyond, 1, PACE, state).state == state


def test_converged_positions_are_accepted() -> None:
    theirs = _their(total_contract_value="50000")
    whole_gap = ConcessionPolicy(first_step=Decimal(1))
    move = respond(RENEWAL, OPENING, theirs, 1, whole_gap)
    assert move.kind == MoveKind.ACCEPT
    assert move.reason == "our positions have converged"


def test_terms_outside_the_mandate_take_their_value() -> None:
    mandate = make_mandate({"total_contract_value": ("100", "80")})
    ours = terms_from({"total_contract_value": Decimal(100), "payment_days": Decimal(30)})
    theirs = terms_from({"total_contract_value": Decimal(90), "payment_days": Decimal(90)})
    move = respond(mandate, ours, theirs, 1, PACE)
    assert move.terms is not None
    assert move.terms.payment_days == 90
    assert move.terms.total_contract_value == Decimal("95.00")


def test_term_where_they_offer_more_than_we_ask_takes_their_value() -> None:
    ours = OPENING.replace(total_contract_value=Decimal("55000"))
    theirs = _their(total_contract_value="58000", payment_days=45)
    move = respond(RENEWAL, ours, theirs, 1, PACE)
    assert move.terms is not None
    assert move.terms.total_contract_value == Decimal("58000")
    assert move.terms.payment_days == 37


def test_acceptable_clauses_are_carried_into_the_counter() -> None:
    mandate = make_mandate({"total_contract_value": ("100", "80")}, acceptable_clauses=("mfn",))
    theirs = terms_from({"total_contract_value": Decimal(90)}, ("mfn",))
    move = respond(mandate, at_target(mandate), theirs, 1, PACE)
    assert move.terms is not None
    assert move.terms.non_standard_clauses == ("mfn",)


# --- properties --------------------------------------------------------------------------------


@FAST
@given(st.data())
def test_strategy_never_proposes_beyond_walk_away_for_any_sequence_of_rounds(
    data: st.DataObject,
) -> None:
    mandate = data.draw(mandates(min_rounds=2, max_rounds=15))
    pace = data.draw(paces())
    ours = data.draw(terms_within(mandate))
    offers = data.draw(st.lists(their_offers(mandate), min_size=1, max_size=mandate.max_rounds + 2))
    state: StrategyState | None = None
    for round_no, theirs in enumerate(offers, start=1):
        move = respond(mandate, ours, theirs, round_no, pace, state)
        if move.kind != MoveKind.COUNTER:
            continue
        assert move.terms is not None
        ev = evaluate(move.terms, mandate)
        assert ev.beyond == (), f"round {round_no} proposed beyond walk-away on {ev.beyond}"
        for term, bound in mandate.bounds().items():
            new, our_v, their_v = (t.value_of(term) for t in (move.terms, ours, theirs))
            if bound.better(our_v, their_v):  # a step toward them, never past their offer
                assert _between(new, our_v, their_v)
            else:  # they offer at least what we ask: take it
                assert new == their_v
        ours, state = move.terms, move.state


@FAST
@given(st.data())
def test_concessions_shrink_round_by_round_against_a_stubborn_counterparty(
    data: st.DataObject,
) -> None:
    mandate = data.draw(mandates(min_rounds=6, max_rounds=25))
    pace = data.draw(st.one_of(st.just(PACE), paces()))
    ours = at_target(mandate)
    theirs = data.draw(terms_within(mandate))
    assume(evaluate(theirs, mandate).overall == Position.WITHIN_WALK_AWAY)
    state: StrategyState | None = None
    last: dict[str, Decimal] = {}
    for round_no in range(1, mandate.max_rounds):
        move = respond(mandate, ours, theirs, round_no, pace, state)
        if move.kind != MoveKind.COUNTER:
            assert move.kind == MoveKind.ACCEPT  # converged; never an escalation here
            break
        assert move.terms is not None
        for term in mandate.bounds():
            step = abs(move.terms.value_of(term) - ours.value_of(term))
            if term in last:
                assert step <= last[term], (
                    f"{term}: round {round_no} conceded {step} > {last[term]}"
                )
            last[term] = step
            assert _between(move.terms.value_of(term), ours.value_of(term), theirs.value_of(term))
        ours, state = move.terms, move.state
    else:
        final = respond(mandate, ours, theirs, mandate.max_rounds, pace, state)
        assert final.kind == MoveKind.ACCEPT  # within the mandate in the last round


@FAST
@given(st.data(), st.integers(1, 40))
def test_strategy_accepts_any_offer_meeting_the_target_on_all_terms(
    data: st.DataObject, round_no: int
) -> None:
    mandate = data.draw(mandates(clauses=("mfn",)))
    ours = data.draw(terms_within(mandate))
    values = {t: data.draw(value_meeting_target(t, b)) for t, b in mandate.bounds().items()}
    theirs = terms_from(values, data.draw(st.sampled_from([(), ("mfn",)])))
    move = respond(mandate, ours, theirs, round_no, data.draw(paces()))
    assert move.kind == MoveKind.ACCEPT


@FAST
@given(st.data(), st.integers(1, 40))
def test_strategy_escalates_any_offer_beyond_walk_away(data: st.DataObject, round_no: int) -> None:
    mandate = data.draw(mandates())
    ours = data.draw(terms_within(mandate))
    theirs = data.draw(their_offers(mandate))
    candidates = [t for t, b in mandate.bounds().items() if value_beyond(t, b) is not None]
    outside_clause = data.draw(st.booleans()) or not candidates
    if outside_clause:
        theirs = theirs.replace(non_standard_clauses=("ip_assignment",))
    else:
        term = data.draw(st.sampled_from(candidates))
        beyond = value_beyond(term, mandate.bounds()[term])
        assert beyond is not None
        value = data.draw(beyond)
        theirs = theirs.replace(**{term: int(value) if term in INTEGER_TERMS else value})
    move = respond(mandate, ours, theirs, round_no, data.draw(paces()))
    assert move.kind == MoveKind.ESCALATE
    assert move.terms is None


@FAST
@given(st.data(), st.integers(0, 5))
def test_strategy_accepts_within_the_mandate_in_the_last_round(
    data: st.DataObject, extra_rounds: int
) -> None:
    mandate = data.draw(mandates(min_rounds=1))
    ours = data.draw(terms_within(mandate))
    theirs = data.draw(terms_within(mandate))
    move = respond(mandate, ours, theirs, mandate.max_rounds + extra_rounds, data.draw(paces()))
    assert move.kind == MoveKind.ACCEPT


@FAST
@given(st.data())
def test_strategy_is_a_pure_function_of_its_inputs(data: st.DataObject) -> None:
    mandate = data.draw(mandates())
    ours, theirs = data.draw(terms_within(mandate)), data.draw(their_offers(mandate))
    round_no, pace = data.draw(st.integers(1, mandate.max_rounds)), data.draw(paces())
    first: Move = respond(mandate, ours, theirs, round_no, pace)
    assert respond(mandate, ours, theirs, round_no, pace) == first
