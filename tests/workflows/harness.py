"""Drive negotiations in tests the way a backend system does: start, respond, decide, read status."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from negotiation.models import (
    CounterpartyAction,
    CounterpartyResponse,
    DecisionReceipt,
    HumanDecision,
    NegotiationRequest,
    NegotiationResult,
    NegotiationStatus,
    PendingDecision,
    Verdict,
)
from negotiation.terms import Terms
from starters import client as api
from starters.sample import renewal_request

_ids = itertools.count(1)


def make_request(
    playbook: str | None = "automated", *, now: datetime | None = None, **overrides: Any
) -> NegotiationRequest:
    """The sample renewal (:func:`starters.sample.renewal_request`) with a fresh test id."""
    return renewal_request(playbook, now=now, **overrides)


def terms(
    value: str | int,
    discount: str | int = 0,
    days: int = 30,
    months: int = 24,
    cap: str = "1",
    clauses: tuple[str, ...] = (),
) -> Terms:
    """Terms in one line."""
    return Terms(
        total_contract_value=Decimal(value),
        discount_pct=Decimal(discount),
        payment_days=days,
        term_months=months,
        liability_cap_multiple=Decimal(cap),
        non_standard_clauses=clauses,
    )


@dataclass
class Negotiation:
    """One running negotiation, driven by a test."""

    client: Client
    request: NegotiationRequest
    outbox: Path
    env: WorkflowEnvironment | None = None
    sequence: int = 0

    @property
    def id(self) -> str:
        return self.request.negotiation_id

    async def respond(
        self,
        action: CounterpartyAction | str,
        offer: Terms | None = None,
        *,
        message_id: str | None = None,
        sequence: int | None = None,
        note: str = "",
    ) -> str:
        """Send a counterparty response; returns its message id."""
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        message_id = message_id or f"cp-{next(_ids)}"
        await api.send_response(
            self.client,
            self.id,
            CounterpartyResponse(
                message_id=message_id,
                sequence=sequence,
                action=CounterpartyAction(action),
                terms=offer,
                note=note,
            ),
        )
        return message_id

    async def status(self) -> NegotiationStatus:
        return await api.get_status(self.client, self.id)

    async def until(
        self, check: Callable[[NegotiationStatus], bool], timeout: float = 20.0
    ) -> NegotiationStatus:
        """Poll the status until ``check`` holds; fail with the last status when it never does."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        status = await self.status()
        while not check(status):
            if loop.time() > end:
                raise AssertionError(
                    f"condition never held; last status:\n{status.model_dump_json(indent=1)}"
                )
            await asyncio.sleep(0.05)
            status = await self.status()
        return status

    async def pending(self, role: str, timeout: float = 20.0) -> PendingDecision:
        """Wait for a decision request to ``role`` and return it."""
        status = await self.until(
            lambda s: any(p.role.value == role for p in s.pending_decisions), timeout
        )
        return next(p for p in status.pending_decisions if p.role.value == role)

    async def decide(
        self,
        request_id: str,
        approver: str,
        verdict: str = "approve",
        *,
        revised: Terms | None = None,
        version: int | None = None,
        message_id: str | None = None,
    ) -> DecisionReceipt:
        return await api.decide(
            self.client,
            self.id,
            HumanDecision(
                message_id=message_id or f"hd-{next(_ids)}",
                request_id=request_id,
                approver=approver,
                verdict=Verdict(verdict),
                revised_terms=revised,
                terms_version=version,
            ),
        )

    async def approve(self, role: str, approver: str) -> DecisionReceipt:
        pending = await self.pending(role)
        return await self.decide(pending.request_id, approver)

    async def result(self) -> NegotiationResult:
        """Wait for the end; on the time-skipping server, time skips while we wait."""
        if self.env is None or not self.env.supports_time_skipping_v1:
            return await api.get_result(self.client, self.id)
        for attempt in range(4):
            try:
                async with self.env.time_skipping_unlocked():
                    return await api.get_result(self.client, self.id)
            except RuntimeError as err:
                # The test server answers a long poll with no event when its clock is held (an
                # activity of an ended test still counted as running); wait on, a few times.
                if "No completion event found" not in str(err) or attempt == 3:
                    raise
        raise AssertionError("unreachable")

    async def mail_containing(self, text: str, timeout: float = 20.0) -> str:
        """Wait for a notification in the outbox that contains ``text``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            found = [m for m in self.mail() if text in m]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no notification containing {text!r} in {self.outbox}")

    def mail(self) -> list[str]:
        """Notification files in the outbox, as text."""
        return [p.read_text() for p in sorted(self.outbox.glob("*.eml"))]
