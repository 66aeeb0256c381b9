"""load_policy: a YAML or JSON file over the defaults; a broken file is InvalidPolicy."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.policy_source import PolicySource
from negotiation.models import Role
from negotiation.policy import Policy

OVERRIDE_ELEVATED_TIER = """\
version: acme-2027-03
value_tiers:
  - {name: standard, up_to: 100000, approvers: [deal_owner]}
  - name: elevated
    up_to: 500000          # lowered from 1,000,000
    approvers: [deal_owner, finance]
    decision_due_hours: 12
  - name: strategic
    up_to: null
    approvers: [deal_owner, finance, executive]
    decision_due_hours: 48
finance:
  max_discount_pct: 15
"""


async def load(activity_env: ActivityEnvironment, path: Path | None) -> Policy:
    return await activity_env.run(PolicySource(path).load_policy)


async def test_without_a_file_the_defaults_apply(activity_env: ActivityEnvironment) -> None:
    assert await load(activity_env, None) == Policy()


async def test_yaml_overrides_one_tier_and_keeps_other_defaults(
    activity_env: ActivityEnvironment, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(OVERRIDE_ELEVATED_TIER)

    policy = await load(activity_env, path)

    assert policy.version == "acme-2027-03"
    elevated = policy.value_tiers[1]
    assert (elevated.up_to, elevated.decision_due_hours) == (Decimal(500_000), 12)
    assert policy.tier_for(Decimal(600_000)).name == "strategic"
    assert policy.finance.max_discount_pct == Decimal(15)
    defaults = Policy()
    assert policy.finance.min_margin_pct == defaults.finance.min_margin_pct  # rest of the section
    assert policy.clauses == defaults.clauses and policy.concession == defaults.concession
    assert policy.deviation_roles["liability_cap_multiple"] == Role.LEGAL


async def test_json_file_is_read_with_exact_decimals(
    activity_env: ActivityEnvironment, tmp_path: Path
) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"finance": {"cost_ratio": 0.1, "capital_cost_pct": 7.35}}')

    policy = await load(activity_env, path)

    assert policy.finance.cost_ratio == Decimal("0.1")
    assert policy.finance.capital_cost_pct == Decimal("7.35")


async def invalid_policy(activity_env: ActivityEnvironment, path: Path) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await load(activity_env, path)
    assert (caught.value.type, caught.value.non_retryable) == ("InvalidPolicy", True)
    assert str(path) in caught.value.message
    return caught.value


async def test_missing_file_is_invalid_policy(
    activity_env: ActivityEnvironment, tmp_path: Path
) -> None:
    err = await invalid_policy(activity_env, tmp_path / "nowhere.yaml")

    assert "cannot be read" in err.message


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("finance: {max_discount_pct: 15\nclauses: [", ["not valid YAML or JSON", "line"]),
        (
            "finance:\n  max_payment_days: soon\nconcession:\n  decay: 2\n",
            ["finance.max_payment_days", "concession.decay"],
        ),
        ("finanse:\n  max_discount_pct: 15\n", ["finanse"]),  # a typo is not silently ignored
        (
            "value_tiers:\n  - {name: only, up_to: 10, approvers: [deal_owner]}\n",
            ["last value tier must have no upper bound"],
        ),
        ("- finance\n- clauses\n", ["mapping"]),
    ],
    ids=["unparseable", "invalid-fields", "unknown-field", "unbounded-tier-missing", "a-list"],
)
async def test_broken_policy_file_is_invalid_policy_saying_what_is_wrong(
    activity_env: ActivityEnvironment, tmp_path: Path, content: str, names: list[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)

    err = await invalid_policy(activity_env, path)

    assert all(name in err.message for name in names), err.message
