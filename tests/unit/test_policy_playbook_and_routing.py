"""Policy: defaults and overrides, playbook choice, approval routing and authority resolution."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from domain_builders import (
    example_request,
    example_request_data,
    make_mandate,
    mandates,
    terms_from,
    terms_within,
    value_beyond,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from negotiation.mandate import evaluate
from negotiation.models import NegotiationRequest, PlaybookName, Role, RoleCard
from negotiation.policy import (
    Policy,
    Requirement,
    complexity,
    resolve_authority,
    route_approvals,
    select_playbook,
)
from negotiation.terms import INTEGER_TERMS, Terms

AUTOMATED = PlaybookName.AUTOMATED
CONDUCTOR = PlaybookName.CONDUCTOR_LED
ENSEMBLE = PlaybookName.COLLABORATIVE_ENSEMBLE
DEFAULT = Policy()
FAST = settings(max_examples=60, deadline=None)
ROLE_ORDER = [Role.DEAL_OWNER, Role.LEGAL, Role.FINANCE, Role.EXECUTIVE, Role.IMPLEMENTATION]

# A seller's mandate wide enough for every default tier, with the other terms bounded too.
WIDE = make_mandate(
    {
        "total_contract_value": ("5000000", "1000"),
        "discount_pct": ("0", "20"),
        "payment_days": (30, 60),
        "term_months": (24, 12),
        "liability_cap_multiple": ("1", "2"),
    }
)


def _terms(value: str, **changes: Any) -> Terms:
    return Terms.model_validate({"total_contract_value": value, "term_months": 24, **changes})


def _request(
    value: int | str,
    *,
    acceptable: tuple[str, ...] = (),
    opening_clauses: tuple[str, ...] = (),
    deal_type: str = "renewal",
    extra_participants: int = 0,
    playbook: str | None = None,
) -> NegotiationRequest:
    """The example request resized to ``value`` (target), with clauses, type and team changed."""
    data = example_request_data()
    target = Decimal(value)
    data["mandate"]["total_contract_value"] = {"target": str(target), "walk_away": str(target / 2)}
    data["opening_terms"]["total_contract_value"] = str(target)
    data["opening_terms"]["non_standard_clauses"] = list(opening_clauses)
    data["mandate"]["acceptable_clauses"] = list(acceptable)
    data["deal_type"] = deal_type
    data["participants"] += [
        {"name": f"extra{i}", "role": "implementation", "email": f"extra{i}@fitnest.example"}
        for i in range(extra_participants)
    ]
    data["playbook"] = playbook
    return NegotiationRequest.model_validate(data)


def _card(name: str, role: Role, limit: int | str = 0) -> RoleCard:
    return RoleCard(name=name, role=role, authority_limit=Decimal(limit), email=f"{name}@x.example")


def _roles(requirements: list[Requirement]) -> list[Role]:
    return [r.role for r in requirements]


# --- defaults and overrides --------------------------------------------------------------------


def test_default_policy_has_three_approval_paths() -> None:
    assert [t.name for t in DEFAULT.value_tiers] == ["standard", "elevated", "strategic"]
    assert [t.approvers for t in DEFAULT.value_tiers] == [
        (Role.DEAL_OWNER,),
        (Role.DEAL_OWNER, Role.FINANCE),
        (Role.DEAL_OWNER, Role.FINANCE, Role.EXECUTIVE),
    ]
    assert DEFAULT.value_tiers[-1].up_to is None


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        ("0", "standard"),
        ("100000", "standard"),
        ("100000.01", "elevated"),
        ("1000000", "elevated"),
        ("1000000.01", "strategic"),
        ("1e12", "strategic"),
    ],
)
def test_tier_for_includes_the_upper_bound(value: str, tier: str) -> None:
    assert DEFAULT.tier_for(Decimal(value)).name == tier


@pytest.mark.parametrize("data", [None, {}])
def test_empty_policy_file_keeps_all_defaults(data: dict[str, Any] | None) -> None:
    assert Policy.from_mapping(data) == DEFAULT


def test_policy_file_overrides_only_the_fields_it_names() -> None:
    policy = Policy.from_mapping(
        {
            "version": "acme-7",
            "playbook_rules": {"automated_max_value": 5000},
            "concession": {"decay": "0.9"},
        }
    )
    assert policy.version == "acme-7"
    assert policy.playbook_rules.automated_max_value == 5000
    assert policy.playbook_rules.ensemble_min_value == DEFAULT.playbook_rules.ensemble_min_value
    assert policy.concession.decay == Decimal("0.9")
    assert policy.concession.first_step == DEFAULT.concession.first_step
    assert policy.value_tiers == DEFAULT.value_tiers
    assert policy.deviation_roles == DEFAULT.deviation_roles
    assert policy.finance == DEFAULT.finance
    assert policy.clauses == DEFAULT.clauses


def test_policy_file_may_replace_the_value_tiers() -> None:
    policy = Policy.from_mapping(
        {
            "value_tiers": [
                {"name": "small", "up_to": 5000, "approvers": ["deal_owner"]},
                {"name": "big", "up_to": None, "approvers": ["deal_owner", "executive"]},
            ]
        }
    )
    assert policy.tier_for(Decimal(5001)).name == "big"
    assert policy.tier_for(Decimal(5001)).approvers == (Role.DEAL_OWNER, Role.EXECUTIVE)


def test_policy_with_a_single_unbounded_tier_is_valid() -> None:
    policy = Policy.from_mapping(
        {"value_tiers": [{"name": "all", "up_to": None, "approvers": ["deal_owner"]}]}
    )
    assert policy.tier_for(Decimal(10**9)).name == "all"


def test_policy_with_unordered_tiers_is_a_clear_validation_error() -> None:
    tiers = [
        {"name": "elevated", "up_to": 1000000, "approvers": ["deal_owner", "finance"]},
        {"name": "standard", "up_to": 100000, "approvers": ["deal_owner"]},
        {"name": "strategic", "up_to": None, "approvers": ["executive"]},
    ]
    with pytest.raises(ValidationError, match="value tiers must be ordered by up_to, lowest first"):
        Policy.from_mapping({"value_tiers": tiers})


def test_policy_with_an_unbounded_tier_before_the_last_is_a_clear_validation_error() -> None:
    tiers = [
        {"name": "all", "up_to": None, "approvers": ["deal_owner"]},
        {"name": "strategic", "up_to": None, "approvers": ["executive"]},
    ]
    with pytest.raises(ValidationError, match="value tiers must be ordered"):
        Policy.from_mapping({"value_tiers": tiers})


def test_policy_whose_last_tier_is_bounded_is_a_clear_validation_error() -> None:
    tiers = [
        {"name": "standard", "up_to": 100000, "approvers": ["deal_owner"]},
        {"name": "elevated", "up_to": 1000000, "approvers": ["finance"]},
    ]
    with pytest.raises(ValidationError, match="the last value tier must have no upper bound"):
        Policy.from_mapping({"value_tiers": tiers})


def test_policy_without_tiers_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="the last value tier must have no upper bound"):
        Policy.from_mapping({"value_tiers": []})


@pytest.mark.parametrize(
    "data",
    [
        {"colour": "blue"},
        {"playbook_rules": {"automated_max_valu": 5}},
        {"concession": {"decay": 1}},
        {"concession": {"first_step": 0}},
        {"value_tiers": [{"name": "x", "up_to": None, "approvers": ["ceo"]}]},
        {"deviation_roles": {"discount_pct": "janitor"}},
    ],
)
def test_bad_policy_file_is_a_validation_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Policy.from_mapping(data)


# --- playbook selection ------------------------------------------------------------------------


def test_example_renewal_is_automated() -> None:
    assert select_playbook(example_request(), DEFAULT) == AUTOMATED


@pytest.mark.parametrize("playbook", list(PlaybookName))
def test_explicit_playbook_wins_over_policy(playbook: PlaybookName) -> None:
    for request in (_request(50_000, playbook=playbook), _request(5_000_000, playbook=playbook)):
        assert select_playbook(request, DEFAULT) == playbook


@pytest.mark.parametrize("value", [1, 50_000, 100_000])
def test_small_simple_deal_is_automated(value: int) -> None:
    assert select_playbook(_request(value), DEFAULT) == AUTOMATED


@pytest.mark.parametrize("value", [1_000_000, 1_000_001, 50_000_000])
def test_large_deal_is_collaborative_ensemble(value: int) -> None:
    assert select_playbook(_request(value), DEFAULT) == ENSEMBLE


def test_complex_small_deal_is_collaborative_ensemble() -> None:
    request = _request(10_000, acceptable=("mfn", "source_escrow"))
    assert complexity(request) == 2
    assert select_playbook(request, DEFAULT) == ENSEMBLE


def test_opening_clauses_and_acceptable_clauses_both_add_complexity() -> None:
    request = _request(10_000, acceptable=("mfn",), opening_clauses=("mfn",))
    assert complexity(request) == 2
    assert select_playbook(request, DEFAULT) == ENSEMBLE


@pytest.mark.parametrize("value", [100_001, 500_000, 999_999])
def test_medium_simple_deal_is_conductor_led(value: int) -> None:
    assert select_playbook(_request(value), DEFAULT) == CONDUCTOR


def test_small_deal_with_some_complexity_is_conductor_led() -> None:
    request = _request(10_000, acceptable=("mfn",))
    assert complexity(request) == 1
    assert select_playbook(request, DEFAULT) == CONDUCTOR


def test_partnership_and_a_large_team_add_complexity() -> None:
    assert complexity(_request(10_000)) == 0
    assert complexity(_request(10_000, deal_type="partnership")) == 1
    assert complexity(_request(10_000, extra_participants=1)) == 0  # five people: not large yet
    assert complexity(_request(10_000, extra_participants=2)) == 1
    both = _request(10_000, deal_type="partnership", extra_participants=2)
    assert complexity(both) == 2
    assert select_playbook(both, DEFAULT) == ENSEMBLE


def test_playbook_thresholds_follow_the_policy_file() -> None:
    policy = Policy.from_mapping(
        {"playbook_rules": {"automated_max_value": 1000, "ensemble_min_value": 20000}}
    )
    assert select_playbook(_request(1000), policy) == AUTOMATED
    assert select_playbook(_request(1001), policy) == CONDUCTOR
    assert select_playbook(_request(20000), policy) == ENSEMBLE
    lenient = Policy.from_mapping({"playbook_rules": {"automated_max_complexity": 1}})
    assert select_playbook(_request(10_000, acceptable=("mfn",)), lenient) == AUTOMATED


@FAST
@given(
    value=st.integers(1, 3_000_000),
    clauses=st.integers(0, 3),
    partnership=st.booleans(),
    extra=st.integers(0, 3),
)
def test_playbook_choice_follows_size_and_complexity(
    value: int, clauses: int, partnership: bool, extra: int
) -> None:
    acceptable = ("mfn", "source_escrow", "escrow")[:clauses]
    request = _request(
        value,
        acceptable=acceptable,
        deal_type="partnership" if partnership else "renewal",
        extra_participants=extra,
    )
    cx = complexity(request)
    assert cx == clauses + partnership + (4 + extra > 5)
    chosen = select_playbook(request, DEFAULT)
    if value >= 1_000_000 or cx >= 2:
        assert chosen == ENSEMBLE
    elif value <= 100_000 and cx == 0:
        assert chosen == AUTOMATED
    else:
        assert chosen == CONDUCTOR


# --- approval routing --------------------------------------------------------------------------


def test_automated_playbook_within_the_mandate_needs_nobody() -> None:
    assert route_approvals(_terms("50000"), WIDE, DEFAULT, AUTOMATED) == []
    assert route_approvals(_terms("5000000"), WIDE, DEFAULT, AUTOMATED) == []


@pytest.mark.parametrize("playbook", [CONDUCTOR, ENSEMBLE])
@pytest.mark.parametrize(
    ("value", "roles"),
    [
        ("50000", [Role.DEAL_OWNER]),
        ("100000", [Role.DEAL_OWNER]),
        ("100000.01", [Role.DEAL_OWNER, Role.FINANCE]),
        ("1000000", [Role.DEAL_OWNER, Role.FINANCE]),
        ("1000000.01", [Role.DEAL_OWNER, Role.FINANCE, Role.EXECUTIVE]),
    ],
)
def test_people_led_playbooks_follow_the_tier_path(
    playbook: PlaybookName, value: str, roles: list[Role]
) -> None:
    needs = route_approvals(_terms(value), WIDE, DEFAULT, playbook)
    assert _roles(needs) == roles
    assert all(n.min_authority == Decimal(value) for n in needs)
    assert all("approval path" in n.reason for n in needs)


@pytest.mark.parametrize(
    ("change", "owner"),
    [
        ({"total_contract_value": "999"}, Role.FINANCE),
        ({"discount_pct": "25"}, Role.FINANCE),
        ({"payment_days": 90}, Role.FINANCE),
        ({"term_months": 6}, Role.DEAL_OWNER),
        ({"liability_cap_multiple": "5"}, Role.LEGAL),
        ({"non_standard_clauses": ["ip_assignment"]}, Role.LEGAL),
    ],
)
def test_term_beyond_walk_away_adds_its_owner_and_the_executive(
    change: dict[str, Any], owner: Role
) -> None:
    terms = _terms("50000").replace(**change)
    needs = route_approvals(terms, WIDE, DEFAULT, AUTOMATED)
    assert _roles(needs) == sorted({owner, Role.EXECUTIVE}, key=ROLE_ORDER.index)
    term = next(iter(change))
    by_role = {n.role: n for n in needs}
    assert f"{term} beyond walk-away" in by_role[owner].reason
    assert "terms beyond the mandate" in by_role[Role.EXECUTIVE].reason


def test_deviation_in_a_people_led_playbook_joins_the_tier_path() -> None:
    terms = _terms("50000", liability_cap_multiple="5")
    needs = route_approvals(terms, WIDE, DEFAULT, CONDUCTOR)
    assert _roles(needs) == [Role.DEAL_OWNER, Role.LEGAL, Role.EXECUTIVE]


def test_deviation_owned_by_a_tier_approver_gives_both_reasons() -> None:
    terms = _terms("500000", discount_pct="30")
    needs = route_approvals(terms, WIDE, DEFAULT, ENSEMBLE)
    finance = next(n for n in needs if n.role == Role.FINANCE)
    assert finance.reason == "elevated approval path; discount_pct beyond walk-away"
    assert _roles(needs) == [Role.DEAL_OWNER, Role.FINANCE, Role.EXECUTIVE]


def test_legal_needs_no_authority_and_others_need_the_contract_value() -> None:
    terms = _terms("2000000", liability_cap_multiple="5")
    needs = {n.role: n.min_authority for n in route_approvals(terms, WIDE, DEFAULT, ENSEMBLE)}
    assert needs == {
        Role.DEAL_OWNER: Decimal(2_000_000),
        Role.LEGAL: Decimal(0),
        Role.FINANCE: Decimal(2_000_000),
        Role.EXECUTIVE: Decimal(2_000_000),
    }


def test_deviation_roles_follow_the_policy_file() -> None:
    policy = Policy.from_mapping({"deviation_roles": {"payment_days": "deal_owner"}})
    needs = route_approvals(_terms("50000", payment_days=90), WIDE, policy, AUTOMATED)
    assert _roles(needs) == [Role.DEAL_OWNER, Role.EXECUTIVE]
    # A term the policy file no longer assigns goes to the executive alone.
    needs = route_approvals(_terms("50000", discount_pct="30"), WIDE, policy, AUTOMATED)
    assert _roles(needs) == [Role.EXECUTIVE]


@FAST
@given(st.data())
def test_automated_terms_within_the_mandate_need_no_approval(data: st.DataObject) -> None:
    mandate = data.draw(mandates(clauses=("mfn",)))
    terms = data.draw(terms_within(mandate, data.draw(st.sampled_from([(), ("mfn",)]))))
    assert route_approvals(terms, mandate, DEFAULT, AUTOMATED) == []


@FAST
@given(st.data())
def test_routing_is_tier_path_plus_deviation_owners_in_role_order(data: st.DataObject) -> None:
    mandate = data.draw(mandates())
    playbook = data.draw(st.sampled_from(list(PlaybookName)))
    values = {}
    for term, bound in mandate.bounds().items():
        beyond = value_beyond(term, bound)
        if beyond is not None and data.draw(st.booleans()):
            values[term] = data.draw(beyond)
        else:
            values[term] = bound.target
    terms = terms_from(values)
    needs = route_approvals(terms, mandate, DEFAULT, playbook)

    expected: set[Role] = set()
    if playbook != AUTOMATED:
        expected |= set(DEFAULT.tier_for(terms.total_contract_value).approvers)
    beyond_terms = evaluate(terms, mandate).beyond
    expected |= {DEFAULT.deviation_roles[t] for t in beyond_terms}
    if beyond_terms:
        expected.add(Role.EXECUTIVE)
    assert _roles(needs) == sorted(expected, key=ROLE_ORDER.index)
    for need in needs:
        assert need.min_authority == (0 if need.role == Role.LEGAL else terms.total_contract_value)
        for term in beyond_terms:
            if DEFAULT.deviation_roles[term] == need.role:
                assert f"{term} beyond walk-away" in need.reason


# --- authority resolution ----------------------------------------------------------------------

TEAM = (
    _card("ana", Role.DEAL_OWNER, 100_000),
    _card("lee", Role.LEGAL),
    _card("fay", Role.FINANCE, 1_000_000),
    _card("eve", Role.EXECUTIVE, 10_000_000),
)


def test_requirement_stays_with_a_role_holder_who_has_the_authority() -> None:
    need = Requirement(
        role=Role.DEAL_OWNER, min_authority=Decimal(100_000), reason="standard approval path"
    )
    assert resolve_authority(need, TEAM) == need


def test_legal_requirement_resolves_to_legal_without_authority() -> None:
    need = Requirement(
        role=Role.LEGAL, min_authority=Decimal(0), reason="liability_cap_multiple beyond"
    )
    assert resolve_authority(need, TEAM) == need


def test_role_lacking_authority_escalates_to_the_executive() -> None:
    need = Requirement(
        role=Role.DEAL_OWNER, min_authority=Decimal(500_000), reason="elevated approval path"
    )
    resolved = resolve_authority(need, TEAM)
    assert resolved.role == Role.EXECUTIVE
    assert resolved.min_authority == Decimal(500_000)
    assert resolved.reason == "elevated approval path; escalated for authority"


def test_missing_role_escalates_to_the_executive() -> None:
    need = Requirement(role=Role.FINANCE, min_authority=Decimal(10), reason="x")
    team = (TEAM[0], TEAM[3])
    assert resolve_authority(need, team).role == Role.EXECUTIVE


def test_without_an_able_executive_it_goes_to_the_highest_authority_present() -> None:
    need = Requirement(
        role=Role.DEAL_OWNER, min_authority=Decimal(50_000_000), reason="strategic approval path"
    )
    resolved = resolve_authority(need, TEAM)
    assert resolved.role == Role.EXECUTIVE  # eve holds the highest authority, though not enough
    assert resolved.min_authority == Decimal(10_000_000)
    assert resolved.reason.endswith("escalated to the highest authority present")


def test_without_an_executive_it_goes_to_the_highest_authority_present() -> None:
    need = Requirement(
        role=Role.DEAL_OWNER, min_authority=Decimal(500_000), reason="elevated approval path"
    )
    resolved = resolve_authority(need, TEAM[:3])
    assert resolved.role == Role.FINANCE
    assert resolved.min_authority == Decimal(500_000)  # fay has enough: nothing is lowered


@FAST
@given(
    limits=st.lists(
        st.tuples(st.sampled_from(list(Role)), st.integers(0, 2_000_000)), min_size=1, max_size=6
    ),
    role=st.sampled_from(list(Role)),
    authority=st.integers(0, 2_000_000),
)
def test_resolved_requirement_can_always_be_decided_by_someone_present(
    limits: list[tuple[Role, int]], role: Role, authority: int
) -> None:
    team = tuple(_card(f"p{i}", r, n) for i, (r, n) in enumerate(limits))
    need = Requirement(role=role, min_authority=Decimal(authority), reason="r")
    resolved = resolve_authority(need, team)
    assert any(
        p.role == resolved.role and p.authority_limit >= resolved.min_authority for p in team
    )
    assert resolved.min_authority <= need.min_authority
    if any(p.role == role and p.authority_limit >= authority for p in team):
        assert resolved == need
    elif any(p.role == Role.EXECUTIVE and p.authority_limit >= authority for p in team):
        assert resolved.role == Role.EXECUTIVE
        assert resolved.min_authority == need.min_authority
    else:
        top = max(p.authority_limit for p in team)
        assert resolved.min_authority == min(need.min_authority, top)
        assert resolved.reason.endswith("escalated to the highest authority present")


def test_integer_terms_are_integers_in_the_wide_mandate() -> None:
    # Guard for the fixture itself: bounds on integer terms are whole numbers.
    for term, bound in WIDE.bounds().items():
        if term in INTEGER_TERMS:
            assert bound.target == bound.target.to_integral_value()
