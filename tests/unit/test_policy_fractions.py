"""Policy durations may be fractions: time-sensitive deals remind and escalate within hours."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from negotiation.policy import Policy, ValueTier


def test_reminder_days_and_due_hours_accept_fractions():
    policy = Policy.model_validate(
        {
            "counterparty_reminder_days": 0.25,
            "value_tiers": [
                {"name": "all", "up_to": None, "approvers": [], "decision_due_hours": 0.5}
            ],
        }
    )
    assert policy.counterparty_reminder_days == 0.25
    assert policy.value_tiers[0].decision_due_hours == 0.5


def test_policies_written_with_whole_numbers_read_as_before():
    policy = Policy.model_validate({"counterparty_reminder_days": 5})
    assert policy.counterparty_reminder_days == 5
    assert Policy().value_tiers[0].decision_due_hours == 24


@pytest.mark.parametrize("bad", [0, -1, "soon"])
def test_a_reminder_or_due_time_that_is_not_positive_is_refused(bad):
    with pytest.raises(ValidationError):
        Policy.model_validate({"counterparty_reminder_days": bad})
    with pytest.raises(ValidationError):
        ValueTier(name="t", up_to=None, approvers=(), decision_due_hours=bad)
