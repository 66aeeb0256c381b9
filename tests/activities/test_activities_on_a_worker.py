"""The activities hosted by a real worker on a real Temporal dev server, called with the presets.

What ActivityEnvironment cannot show: the activities register under their names from
``all_activities``, their inputs and results cross the pydantic data converter, the server accepts
the options in :mod:`activities.timeouts`, and a permanent failure reaches the workflow as
non-retryable after a single attempt. The workflow here is a stand-in, unsandboxed on purpose: it
tests the activities, not workflow code.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import all_activities
from activities.notifications import Delivery, Notification, Notifier
from activities.policy_source import PolicySource
from activities.reviews import ReviewInput, legal_review
from activities.timeouts import NOTIFY, POLICY, REVIEW
from negotiation.models import DealType
from negotiation.reviews import LegalFindings
from negotiation.terms import Terms
from tests.activities.smtp_test_server import SENDER, SmtpServer
from workers.settings import Settings


class Attempt(BaseModel):
    """What one activity call gave the workflow: a result, or the failure's type and retry state."""

    delivery: Delivery | None = None
    error_type: str | None = None
    retry_state: str | None = None


class Rehearsal(BaseModel):
    """Results of the stand-in workflow."""

    findings: LegalFindings
    policy_version: str
    attempts: list[Attempt]


@workflow.defn(sandboxed=False)
class ActivityRehearsal:
    """Loads the policy, reviews terms, then sends each notification, as the movements will."""

    @workflow.run
    async def run(self, notifications: list[Notification]) -> Rehearsal:
        policy = await workflow.execute_activity_method(PolicySource.load_policy, **POLICY)
        inp = ReviewInput(
            negotiation_id="sale-contoso-2027",
            terms_version=1,
            terms=Terms(total_contract_value=Decimal(100), non_standard_clauses=("mfn",)),
            deal_type=DealType.ENTERPRISE_SALE,
            policy=policy,
        )
        findings = await workflow.execute_activity(legal_review, inp, **REVIEW)
        attempts = []
        for n in notifications:
            try:
                delivery = await workflow.execute_activity_method(
                    Notifier.send_notification, n, **NOTIFY
                )
                attempts.append(Attempt(delivery=delivery))
            except ActivityError as err:
                cause = err.cause
                assert isinstance(cause, ApplicationError)
                state = err.retry_state.name if err.retry_state is not None else None
                attempts.append(Attempt(error_type=cause.type, retry_state=state))
        return Rehearsal(findings=findings, policy_version=policy.version, attempts=attempts)


@dataclass
class Hosted:
    client: Client
    task_queue: str


@pytest.fixture(scope="module")
async def hosted(
    dev_env: WorkflowEnvironment, smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hosted]:
    """A worker on the shared dev server hosting ``all_activities(settings)`` and the stand-in."""
    data = tmp_path_factory.mktemp("worker")
    (data / "policy.yaml").write_text("version: rehearsal-1\n")
    settings = Settings(
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_sender=SENDER,
        outbox_dir=None,
        policy_file=data / "policy.yaml",
        ledger_dir=data / "ledger",
        _env_file=None,
    )
    task_queue = f"activities-{uuid.uuid4().hex[:8]}"
    async with Worker(
        dev_env.client,
        task_queue=task_queue,
        workflows=[ActivityRehearsal],
        activities=all_activities(settings),
    ):
        yield Hosted(dev_env.client, task_queue)


@pytest.mark.integration
async def test_activities_run_on_a_worker_with_the_presets(
    hosted: Hosted, smtp_server: SmtpServer
) -> None:
    key = f"sale-contoso-2027/closure/outcome-{uuid.uuid4().hex[:8]}"
    note = Notification(
        idempotency_key=key,
        negotiation_id="sale-contoso-2027",
        kind="outcome",
        to=("ana@fitnest.example",),
        subject="Agreed",
        body="Signed.",
    )
    refused = note.model_copy(
        update={"idempotency_key": f"{key}-refused", "to": ("nobody@refused.example",)}
    )

    result = await hosted.client.execute_workflow(
        ActivityRehearsal.run,
        [note, note, refused],
        id=f"rehearsal-{uuid.uuid4().hex[:8]}",
        task_queue=hosted.task_queue,
    )

    assert result.policy_version == "rehearsal-1"
    assert result.findings.counsel_must_sign
    first, second, rejected = result.attempts
    assert first.delivery == Delivery(idempotency_key=key, channels=("smtp",), duplicate=False)
    assert second.delivery is not None and second.delivery.duplicate
    assert (rejected.error_type, rejected.retry_state) == (
        "NotificationRejected",
        RetryState.NON_RETRYABLE_FAILURE.name,
    )
    assert len(smtp_server.received(key)) == 1
