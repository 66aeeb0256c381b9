"""The Negotiation aggregate: what it takes, what it refuses and why, with no server and no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain_builders import example_request
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.aggregate import (
    MAX_REJECTED_LISTED,
    MAX_REMEMBERED,
    Closing,
    Negotiation,
    Refusal,
    RefusalCode,
    ResponseReceipt,
    counterparty_actions,
)
from negotiation.models import (
    CounterpartyAction,
    CounterpartyResponse,
    DecisionKind,
    DecisionReceipt,
    DecisionRequest,
    HumanDecision,
    Movement,
    Outcome,
    Role,
    Verdict,
)
from negotiation.terms import Offer, Party

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
REQUEST = example_request()
ANSWERS = counterparty_actions(Movement.DEVELOPMENT, agreed=False)


def _open() -> Negotiation:
    negotiation = Negotiation.open(REQUEST, T0)
    negotiation.enter(Movement.DEVELOPMENT, T0)
    return negotiation


def _counter(message_id: str, sequence: int, value: int = 55_000) -> CounterpartyResponse:
    terms = REQUEST.opening_terms.model_copy(update={"total_contract_value": Decimal(value)})
    return CounterpartyResponse(
        message_id=message_id, sequence=sequence, action=CounterpartyAction.COUNTER, terms=terms
    )


def _request(request_id: str = "dev-1-counteroffer-deal_owner") -> DecisionRequest:
    return DecisionRequest(
        request_id=request_id,
        kind=DecisionKind.COUNTEROFFER,
        role=Role.DEAL_OWNER,
        required_authority=Decimal(0),
        reason="the deal owner decides every counteroffer",
        terms_version=2,
        movement=Movement.DEVELOPMENT,
        created_at=T0,
        due_at=T0 + timedelta(hours=24),
    )


def _decision(
    message_id: str, approver: str = "ana", verdict: Verdict = Verdict.APPROVE
) -> HumanDecision:
    return HumanDecision(
        message_id=message_id,
        request_id="dev-1-counteroffer-deal_owner",
        approver=approver,
        verdict=verdict,
    )


def test_a_response_is_taken_into_the_one_inbox_and_its_repeat_answers_with_the_first_receipt():
    negotiation = _open()
    first = negotiation.take_counterparty_response(_counter("m-1", 1), ANSWERS, T0)
    again = negotiation.take_counterparty_response(_counter("m-1", 1), ANSWERS, T0 + timedelta(1))
    assert isinstance(first, ResponseReceipt) and again == first
    assert len(negotiation.inbox) == 1 and negotiation.status.queued_messages == 1
    assert negotiation.status.rejected_messages == []


def test_an_id_reused_for_other_content_is_refused_and_recorded():
    negotiation = _open()
    negotiation.take_counterparty_response(_counter("m-1", 1), ANSWERS, T0)
    refused = negotiation.take_counterparty_response(_counter("m-1", 2, 50_000), ANSWERS, T0)
    assert isinstance(refused, Refusal) and refused.code == RefusalCode.REUSED
    assert [r.message_id for r in negotiation.status.rejected_messages] == ["m-1"]


def test_a_stale_sequence_a_closed_negotiation_and_an_impossible_action_are_refused_with_codes():
    negotiation = _open()
    negotiation.take_counterparty_response(_counter("m-2", 2), ANSWERS, T0)
    stale = negotiation.counterparty_refusal(_counter("m-1", 1), ANSWERS)
    assert stale is not None and stale.code == RefusalCode.STALE
    sign = CounterpartyResponse(message_id="s-1", sequence=3, action=CounterpartyAction.SIGN)
    impossible = negotiation.counterparty_refusal(sign, ANSWERS)
    assert impossible is not None and impossible.code == RefusalCode.NOT_POSSIBLE
    negotiation.conclude(Outcome.WITHDRAWN)
    closed = negotiation.counterparty_refusal(_counter("m-3", 3), ANSWERS)
    assert closed is not None and closed.code == RefusalCode.CLOSED


def test_the_signature_is_possible_once_the_terms_are_agreed():
    assert CounterpartyAction.SIGN in counterparty_actions(Movement.DEVELOPMENT, agreed=True)
    assert CounterpartyAction.SIGN in counterparty_actions(Movement.CLOSURE, agreed=False)
    assert CounterpartyAction.COUNTER not in counterparty_actions(Movement.CLOSURE, agreed=False)


def test_a_decision_is_recorded_once_with_the_authority_it_was_taken_with():
    negotiation = _open()
    negotiation.ask([_request()], T0)
    assert negotiation.pending_roles() == ["deal_owner"]
    receipt = negotiation.take_decision(_decision("d-1"), REQUEST, T0 + timedelta(hours=2))
    again = negotiation.take_decision(_decision("d-1"), REQUEST, T0 + timedelta(hours=3))
    assert isinstance(receipt, DecisionReceipt) and again == receipt
    [record] = negotiation.status.decisions
    assert record.approver == "ana" and record.approver_authority == Decimal(100_000)
    assert negotiation.pending_roles() == [] and negotiation.status.pending_decisions == []
    assert negotiation.status.internal_wait_seconds == 2 * 3600
    taken = negotiation.next_decision({"dev-1-counteroffer-deal_owner"})
    assert taken is not None and taken.record == record


def test_a_decision_from_someone_without_the_role_is_refused_where_it_takes_effect():
    negotiation = _open()
    negotiation.ask([_request()], T0)
    reason = negotiation.take_decision(_decision("d-1", approver="fay"), REQUEST, T0)
    assert isinstance(reason, str) and "holds the role finance" in reason
    assert negotiation.pending_roles() == ["deal_owner"]  # still waiting for the deal owner
    assert negotiation.status.rejected_messages[0].message_id == "d-1"
    other = negotiation.take_decision(_decision("d-2", approver="mallory"), REQUEST, T0)
    assert isinstance(other, str) and "not a participant" in other


def test_a_decided_request_says_so_and_after_the_close_everything_is_closed():
    negotiation = _open()
    negotiation.ask([_request()], T0)
    negotiation.take_decision(_decision("d-1", verdict=Verdict.REJECT), REQUEST, T0)
    again = negotiation.decision_refusal(_decision("d-2"), REQUEST, T0)
    assert again is not None and "already decided (reject by ana)" in again
    negotiation.close(Outcome.WALKED_AWAY, "ana rejected", None, T0)
    closed = negotiation.decision_refusal(_decision("d-3"), REQUEST, T0)
    assert closed == "the negotiation is closed (walked_away)"


def test_the_counterparty_clock_runs_from_the_hand_over_to_their_answer():
    negotiation = _open()
    negotiation.hand_over(T0)
    negotiation.take_counterparty_response(_counter("m-1", 1), ANSWERS, T0 + timedelta(days=2))
    assert negotiation.status.counterparty_wait_seconds == 2 * 86_400
    assert negotiation.counterparty_since is None


def test_the_close_records_every_message_never_used_and_computes_the_kpis():
    negotiation = _open()
    offer = Offer(version=1, party=Party.US, round=0, terms=REQUEST.opening_terms, at=T0)
    negotiation.offer(offer, 0)
    negotiation.take_counterparty_response(_counter("m-1", 1), ANSWERS, T0)
    negotiation.close(Outcome.AGREED, "signed", offer, T0 + timedelta(days=1))
    assert negotiation.inbox == [] and negotiation.status.queued_messages == 0
    assert (
        "closed (agreed) before it could be used" in negotiation.status.rejected_messages[0].reason
    )
    result = negotiation.result(REQUEST, Closing(rounds=1), [], provisional=False)
    assert result.outcome == Outcome.AGREED and result.agreed_terms == offer
    assert result.kpis.cycle_time_seconds == 86_400
    assert result.kpis.deal_quality is not None


def test_a_flood_of_bad_messages_keeps_the_status_bounded():
    negotiation = _open()
    for i in range(MAX_REJECTED_LISTED + 50):
        negotiation.reject(f"bad-{i}", "counterparty_response", "malformed", T0)
    assert len(negotiation.status.rejected_messages) == MAX_REJECTED_LISTED
    assert negotiation.status.rejected_not_listed == 50


def test_the_state_that_travels_keeps_only_the_latest_ids_and_older_repeats_are_stale():
    negotiation = _open()
    for i in range(1, MAX_REMEMBERED + 20):
        negotiation.take_counterparty_response(_counter(f"m-{i}", i), ANSWERS, T0)
        negotiation.next_counterparty()
    assert len(negotiation.responses) == MAX_REMEMBERED and len(negotiation.seen) == MAX_REMEMBERED
    old = negotiation.counterparty_refusal(_counter("m-1", 1), ANSWERS)
    assert old is not None and old.code == RefusalCode.STALE


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=8), st.integers(min_value=1, max_value=12)),
        max_size=40,
    )
)
def test_whatever_arrives_is_taken_once_in_sequence_or_recorded_never_lost(messages):
    """Any mix of repeats, reordering and reuse: the inbox holds each message once, in rising
    sequence; everything else is a receipt again or a recorded refusal."""
    negotiation = _open()
    taken, refused, repeats = [], 0, 0
    for n, sequence in messages:
        message = _counter(f"m-{n}", sequence, 50_000 + n)
        before = len(negotiation.status.rejected_messages)
        answer = negotiation.take_counterparty_response(message, ANSWERS, T0)
        if isinstance(answer, Refusal):
            refused += 1
            # A refused message sent again is told so, and recorded only the first time.
            again = answer.code == RefusalCode.NOT_ACCEPTED
            assert len(negotiation.status.rejected_messages) == before + (0 if again else 1)
        elif answer.message_id in [m.message_id for m in taken]:
            repeats += 1
        else:
            taken.append(message)
    inbox = [e.counterparty for e in negotiation.inbox]
    assert inbox == taken
    sequences = [m.sequence for m in taken]
    assert sequences == sorted(set(sequences))
    assert len(taken) + refused + repeats == len(messages)
    assert Negotiation.model_validate_json(negotiation.model_dump_json()) == negotiation
