"""A small workflow of the fleet tests: it sends N notifications through the product's
``send_notification`` activity, a few at a time, and reports what the activity answered.

It stands apart from the negotiation workflows on purpose: the fleet tests prove what the ledger
and the workers do, whatever shape the negotiations have. Its activity options are the product's
NOTIFY preset made fast: a 4 s attempt, so that a mail server stalled on purpose makes attempts
time out while their send is still in flight, and retries that come back within a second.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

from activities.timeouts import NOTIFY, ActivityOptions

with workflow.unsafe.imports_passed_through():
    from activities.notifications import Delivery, Notification, Notifier

#: The NOTIFY preset's shape with test-sized bounds (see the module docstring).
FAST_NOTIFY = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=4),
    heartbeat_timeout=timedelta(seconds=3),
    schedule_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=1),
        maximum_attempts=0,
        non_retryable_error_types=NOTIFY["retry_policy"].non_retryable_error_types,
    ),
)


class FleetInput(BaseModel):
    """How many notifications to send, how many at once, and under which key prefix."""

    prefix: str = Field(description="Keys are '<prefix>/<n>'; unique per run.")
    count: int = Field(ge=1, le=1000)
    at_once: int = Field(default=5, ge=1, le=50)
    to: str = Field(default="counterparty@northwind.example")


class FleetResult(BaseModel):
    """What the activity answered, over all the notifications."""

    sent: int = Field(description="Answers with duplicate=False: this call delivered it.")
    duplicates: int = Field(description="Answers with duplicate=True: a previous attempt had.")


@workflow.defn(name="FleetNotifications")
class FleetNotifications:
    """Send ``count`` notifications, ``at_once`` at a time; each is awaited to its end."""

    @workflow.run
    async def run(self, inp: FleetInput) -> FleetResult:
        """All the notifications, in batches."""
        answers: list[Delivery] = []
        for first in range(0, inp.count, inp.at_once):
            batch = [
                workflow.execute_activity_method(
                    Notifier.send_notification,
                    Notification(
                        idempotency_key=f"{inp.prefix}/{i}",
                        negotiation_id=inp.prefix.replace("/", "-"),
                        kind="offer",
                        to=(inp.to,),
                        subject=f"Fleet notification {i}",
                        body="A notification of the fleet test.\n",
                    ),
                    **FAST_NOTIFY,
                )
                for i in range(first, min(first + inp.at_once, inp.count))
            ]
            answers.extend(await asyncio.gather(*batch))
        duplicates = sum(1 for a in answers if a.duplicate)
        return FleetResult(sent=len(answers) - duplicates, duplicates=duplicates)
