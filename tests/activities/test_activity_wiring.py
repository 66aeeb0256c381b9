"""The activity options, the worker's activity list, and the types on the wire."""

from __future__ import annotations

import inspect
from decimal import Decimal
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import RetryPolicy as RetryPolicyProto
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities import all_activities
from activities.errors import PERMANENT_TYPES
from activities.notifications import Delivery, Notification
from activities.policy_source import PolicySource
from activities.reviews import ReviewInput, finance_approval, legal_review
from activities.timeouts import NOTIFY, POLICY, REVIEW, ActivityOptions
from negotiation.models import DealType
from negotiation.policy import Policy
from negotiation.terms import Terms
from workers.settings import Settings


@pytest.mark.parametrize("options", [REVIEW, POLICY, NOTIFY], ids=["REVIEW", "POLICY", "NOTIFY"])
def test_activity_options_are_valid_and_bounded(options: ActivityOptions) -> None:
    accepted = inspect.signature(workflow.execute_activity).parameters
    assert set(options) <= set(accepted)
    policy = options["retry_policy"]
    policy.apply_to_proto(RetryPolicyProto())  # the SDK's own validation
    assert policy.maximum_attempts == 0  # unlimited attempts...
    assert (
        options["schedule_to_close_timeout"] > options["start_to_close_timeout"]
    )  # ...bounded in time
    assert set(policy.non_retryable_error_types or ()) <= set(PERMANENT_TYPES)


def test_notify_outlasts_a_mail_server_outage_and_review_escalates_within_the_hour() -> None:
    assert NOTIFY["schedule_to_close_timeout"].total_seconds() == 24 * 3600
    assert REVIEW["schedule_to_close_timeout"].total_seconds() == 3600


def test_all_activities_wires_every_activity_by_name(tmp_path: Path) -> None:
    settings = Settings(
        outbox_dir=tmp_path / "outbox", ledger_dir=tmp_path / "ledger", _env_file=None
    )

    names = [activity._Definition.must_from_callable(fn).name for fn in all_activities(settings)]

    assert names == [
        "legal_review",
        "finance_approval",
        "load_policy",
        "send_notification",
        "send_notifications",
    ]


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        (
            ReviewInput(
                negotiation_id="sale-contoso-2027",
                terms_version=2,
                terms=Terms(total_contract_value=Decimal("1234.50"), non_standard_clauses=("mfn",)),
                deal_type=DealType.PARTNERSHIP,
                policy=Policy(),
            ),
            ReviewInput,
        ),
        (Policy(), Policy),
        (
            Notification(
                idempotency_key="n-1/outcome",
                negotiation_id="n-1",
                kind="outcome",
                to=("ana@fitnest.example",),
                subject="Agreed",
                body="Done.",
            ),
            Notification,
        ),
        (
            Delivery(idempotency_key="n-1/outcome", channels=("smtp", "outbox"), duplicate=True),
            Delivery,
        ),
    ],
    ids=["ReviewInput", "Policy", "Notification", "Delivery"],
)
async def test_activity_types_survive_the_pydantic_data_converter(value: Any, type_: type) -> None:
    payloads = await pydantic_data_converter.encode([value])

    [decoded] = await pydantic_data_converter.decode(payloads, [type_])

    assert decoded == value


async def test_review_findings_survive_the_pydantic_data_converter(
    activity_env: ActivityEnvironment,
) -> None:
    inp = ReviewInput(
        negotiation_id="sale-contoso-2027",
        terms_version=1,
        terms=Terms(total_contract_value=Decimal("500000.00"), discount_pct=Decimal(40)),
        deal_type=DealType.ENTERPRISE_SALE,
        policy=await activity_env.run(PolicySource(None).load_policy),
    )
    for fn in (legal_review, finance_approval):
        found = await activity_env.run(fn, inp)
        hint = get_type_hints(fn)["return"]
        [decoded] = await pydantic_data_converter.decode(
            await pydantic_data_converter.encode([found]), [hint]
        )
        assert decoded == found
