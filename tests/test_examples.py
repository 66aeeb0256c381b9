"""Every file in ``examples/`` is a valid message of the kind its place says, and fits its story.

The files are parsed the way ``fitnest`` parses them (JSON, then the pydantic model), so an
example that passes here is accepted by ``fitnest start``, ``fitnest respond`` and
``fitnest decide --terms``. ``tests/integration`` plays them against a real server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from negotiation.mandate import evaluate
from negotiation.models import (
    CounterpartyAction,
    CounterpartyResponse,
    NegotiationRequest,
    PlaybookName,
)
from negotiation.policy import Policy, select_playbook
from negotiation.terms import Position, Terms

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RESPONSES = EXAMPLES / "responses"

#: Request files, each named after the playbook it plays.
REQUESTS = {
    "automated_renewal.json": PlaybookName.AUTOMATED,
    "conductor_led_supplier.json": PlaybookName.CONDUCTOR_LED,
    "collaborative_ensemble_enterprise.json": PlaybookName.COLLABORATIVE_ENSEMBLE,
}
#: Counteroffers carry terms, so each belongs to one request: by the prefix of its name.
COUNTERS_FOR = {
    "renewal": "automated_renewal.json",
    "supplier": "conductor_led_supplier.json",
    "enterprise": "collaborative_ensemble_enterprise.json",
}
#: ``fitnest decide --verdict revise --terms examples/terms_revised.json`` is for this request.
REVISED_FOR = "conductor_led_supplier.json"

ALL_FILES = sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix != ".md")


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _model_for(path: Path) -> type[BaseModel]:
    if path.parent == RESPONSES:
        return CounterpartyResponse
    if path == EXAMPLES / "terms_revised.json":
        return Terms
    return NegotiationRequest


def _request(name: str) -> NegotiationRequest:
    return NegotiationRequest.model_validate(_load(EXAMPLES / name))


def _response(name: str) -> CounterpartyResponse:
    return CounterpartyResponse.model_validate(_load(RESPONSES / name))


def _counters() -> list[Path]:
    return sorted(RESPONSES.glob("*_counter_*.json"))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_file_validates_against_its_model(path: Path) -> None:
    assert path.suffix == ".json", "examples are JSON files"
    _model_for(path).model_validate(_load(path))


def test_there_is_one_request_per_playbook_and_policy_agrees_with_its_name() -> None:
    requests = {p.name for p in EXAMPLES.glob("*.json") if _model_for(p) is NegotiationRequest}
    assert requests == set(REQUESTS)
    for name, playbook in REQUESTS.items():
        request = _request(name)
        # Named explicitly or not, the default policy would choose the same playbook.
        assert request.playbook in (None, playbook), name
        assert select_playbook(request.model_copy(update={"playbook": None}), Policy()) == playbook
    ids = [_request(n).negotiation_id for n in REQUESTS]
    assert len(set(ids)) == len(ids)


def test_the_supplier_request_buys_lower_value_and_more_payment_days_are_better() -> None:
    mandate = _request("conductor_led_supplier.json").mandate
    assert not mandate.total_contract_value.higher_is_better
    assert mandate.payment_days is not None and mandate.payment_days.higher_is_better


def test_the_enterprise_request_accepts_a_fallback_clause_and_has_an_executive() -> None:
    request = _request("collaborative_ensemble_enterprise.json")
    assert "mfn" in request.mandate.acceptable_clauses
    assert "mfn" in Policy().clauses.fallback_clauses
    assert [p.name for p in request.participants if p.role.value == "executive"]
    assert request.mandate.total_contract_value.target >= 1_000_000


@pytest.mark.parametrize("path", _counters(), ids=lambda p: p.name)
def test_counteroffers_lie_where_their_names_say(path: Path) -> None:
    prefix, _, kind = path.stem.partition("_counter_")
    mandate = _request(COUNTERS_FOR[prefix]).mandate
    response = _response(path.name)
    assert response.action == CounterpartyAction.COUNTER and response.terms is not None
    position = evaluate(response.terms, mandate).overall
    if kind == "within_mandate":
        # Within the walk-away but short of the target: a round for the playbook to play.
        assert position == Position.WITHIN_WALK_AWAY
    else:
        assert kind == "beyond_walk_away"
        assert position == Position.BEYOND_WALK_AWAY


def test_every_request_has_both_counteroffers() -> None:
    names = {p.name for p in _counters()}
    for prefix in COUNTERS_FOR:
        for kind in ("within_mandate", "beyond_walk_away"):
            assert f"{prefix}_counter_{kind}.json" in names


def test_the_other_responses_are_what_their_names_say() -> None:
    for action in ("accept", "reject", "withdraw", "sign"):
        assert _response(f"{action}.json").action == CounterpartyAction(action)


def test_responses_play_in_order_counter_accept_sign_and_never_repeat_an_id() -> None:
    responses = [_response(p.name) for p in sorted(RESPONSES.glob("*.json"))]
    ids = [r.message_id for r in responses]
    assert len(set(ids)) == len(ids)
    # A later message must carry a higher sequence, or the negotiation rejects it as stale.
    counters = [r.sequence for r in responses if r.action == CounterpartyAction.COUNTER]
    assert max(counters) < _response("accept.json").sequence < _response("sign.json").sequence


def test_revised_terms_lie_within_the_mandate_they_are_for() -> None:
    revised = Terms.model_validate(_load(EXAMPLES / "terms_revised.json"))
    request = _request(REVISED_FOR)
    assert not evaluate(revised, request.mandate).beyond
    counter = _response("supplier_counter_within_mandate.json").terms
    assert revised != counter and revised != request.opening_terms


def test_the_readme_explains_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for path in ALL_FILES:
        assert str(path.relative_to(EXAMPLES)) in readme, path
