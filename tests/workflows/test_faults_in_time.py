"""Faults that take hours, on the time-skipping server: a legal or finance review service that
fails for good.

Notifications go to a real SMTP server (aiosmtpd), which counts every delivery: the outbox could
not show a second copy, since it keeps the first file of each key.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio import activity
from temporalio.api.enums.v1 import EventType, RetryState
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.reviews import ReviewInput
from negotiation.models import DecisionKind, Movement, NegotiationRequest, Role
from negotiation.reviews import FinanceFindings, LegalFindings
from starters import client as api
from tests.activities.smtp_test_server import MailHandler
from tests.workflows.harness import Negotiation, make_request, worker_replacing
from workers.devserver import free_port
from workers.settings import Settings

DAY = timedelta(days=1)


@dataclass
class Stage:
    """A task queue whose worker the test starts and stops, with an SMTP server counting mail."""

    env: WorkflowEnvironment
    settings: Settings
    mail: MailHandler
    replaced: dict[str, Callable[..., Any]]
    started: list[str]

    def worker(self) -> Worker:
        """A fresh worker for the queue; ``replaced`` activities stand in for the real ones."""
        return worker_replacing(self.env.client, self.settings, self.replaced)

    async def start(self, request: NegotiationRequest) -> Negotiation:
        receipt = await api.start_negotiation(
            self.env.client, request, task_queue=self.settings.task_queue
        )
        assert receipt.started
        self.started.append(request.negotiation_id)
        return Negotiation(self.env.client, request, Path("unused"), self.env)

    async def finish(self) -> None:
        """End every negotiation started, each workflow once its activities are done.

        Call it while the worker runs: the test server counts an activity cut off mid-flight as
        running, and a negotiation left open holds its clock; either stalls the module's next test.
        """
        for negotiation_id in self.started:
            for workflow_id in [negotiation_id, *(f"{negotiation_id}/{m.value}" for m in Movement)]:
                handle = self.env.client.get_workflow_handle(workflow_id)
                with contextlib.suppress(RPCError):  # never started, or ended already
                    for _ in range(200):
                        desc = await handle.describe()
                        if not desc.raw_description.pending_activities:
                            break
                        await asyncio.sleep(0.05)
                    await handle.terminate(reason="test done")
        self.started.clear()

    def sent(self, n: Negotiation) -> Counter[str]:
        """How often each notification of ``n`` arrived, by key without the negotiation id."""
        prefix = f"{n.id}/"
        keys = (r.key for r in self.mail.received)
        return Counter(k.removeprefix(prefix) for k in keys if k.startswith(prefix))


@pytest.fixture
def smtp() -> Iterator[tuple[int, MailHandler]]:
    handler = MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, handler
    controller.stop()


@pytest.fixture
async def stage(
    ts_env: WorkflowEnvironment, tmp_path: Path, smtp: tuple[int, MailHandler]
) -> AsyncIterator[Stage]:
    port, handler = smtp
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        task_queue=f"tf-{uuid.uuid4().hex[:8]}",
        smtp_host="127.0.0.1",
        smtp_port=port,
        ledger_dir=tmp_path / "ledger",
    )
    s = Stage(ts_env, settings, handler, {}, [])
    yield s
    await s.finish()


def once(counts: Counter[str]) -> None:
    twice = {k: c for k, c in counts.items() if c != 1}
    assert not twice, f"sent more than once: {twice}"


class Unavailable:
    """A review service that is down for good, behind the real activity's name and signature."""

    def __init__(self) -> None:
        self.attempts = 0

    async def _refuse(self) -> None:
        self.attempts += 1
        raise ConnectionError("the review service answered 503")

    @activity.defn(name="legal_review")
    async def legal_review(self, inp: ReviewInput) -> LegalFindings:
        await self._refuse()
        raise AssertionError("unreachable")

    @activity.defn(name="finance_approval")
    async def finance_approval(self, inp: ReviewInput) -> FinanceFindings:
        await self._refuse()
        raise AssertionError("unreachable")


async def test_review_services_that_fail_for_good_time_out_and_the_people_are_asked_instead(
    stage: Stage,
) -> None:
    down = Unavailable()
    stage.replaced["legal_review"] = down.legal_review
    stage.replaced["finance_approval"] = down.finance_approval
    asking = {
        Role.LEGAL: (DecisionKind.LEGAL_SIGNOFF, "lee"),
        Role.FINANCE: (DecisionKind.FINANCE_SIGNOFF, "fay"),
    }
    async with stage.worker():
        n = await stage.start(make_request("automated"))
        await n.respond("accept")
        await n.until(lambda s: s.movement == Movement.CLOSURE)
        # Retries back off to a minute apart and stop at REVIEW's one-hour bound.
        await stage.env.sleep(2 * timedelta(hours=1))
        s = await n.until(lambda s: {p.role for p in s.pending_decisions} == set(asking))
        assert s.outcome is None  # the negotiation waits for people; it did not fail
        assert 2 < down.attempts < 200  # retried, and the retries were bounded
        # Their retries ended because time ran out (the schedule-to-close bound), not by chance.
        history = await stage.env.client.get_workflow_handle(f"{n.id}/closure").fetch_history()
        ended = [
            e.activity_task_failed_event_attributes.retry_state
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        ]
        assert ended == [RetryState.RETRY_STATE_TIMEOUT] * 2
        await asyncio.sleep(0.3)  # anything sent twice would have gone out by now
        once(stage.sent(n))
        for asked in s.pending_decisions:
            kind, person = asking[asked.role]
            assert asked.kind == kind
            review = next(r for r in s.reviews if r.kind == asked.role.value)
            assert not review.passed and "could not run" in review.findings[0]
            mails = [r for r in stage.mail.received if r.key.endswith(asked.request_id)]
            assert [r.rcpt_tos for r in mails] == [[f"{person}@fitnest.example"]]  # told, once
        # They sign off in person, and the negotiation goes on to our signature.
        for asked in s.pending_decisions:
            await n.decide(asked.request_id, asking[asked.role][1])
        # With sign-offs given in person, our signature is a person's too: the deal owner is next.
        await n.until(lambda s: [p.kind for p in s.pending_decisions] == [DecisionKind.SIGNATURE])
        await stage.finish()
