"""Faults, for real: the worker goes away mid-negotiation, the mail server is down for a while.

Both run on the shared dev server with real workers and a real SMTP server, concurrently.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import WorkflowEnvironment

from negotiation.models import Movement
from starters import client as api
from tests.activities.smtp_test_server import MailHandler
from tests.workflows.harness import Negotiation, make_request, terms
from workers.devserver import free_port
from workers.settings import Settings
from workers.worker import build_worker

pytestmark = pytest.mark.integration


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        ledger_dir=tmp_path / "ledger",
        **overrides,  # type: ignore[arg-type]
    )


async def _worker_goes_away(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = _settings(tmp_path, outbox_dir=tmp_path / "outbox")
    queue = f"fault-{uuid.uuid4().hex[:6]}"
    request = make_request("automated")
    n = Negotiation(dev_env.client, request, tmp_path / "outbox")
    async with build_worker(dev_env.client, settings, task_queue=queue):
        await api.start_negotiation(dev_env.client, request, task_queue=queue)
        await n.until(lambda s: s.our_terms is not None)
    # No worker at all now: the response is kept by the server, nothing is lost.
    await n.respond("counter", terms(50000, 10, 45))
    await asyncio.sleep(0.5)
    async with build_worker(dev_env.client, settings, task_queue=queue):
        s = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    assert s.their_terms is not None and s.their_terms.version == 2
    assert s.rejected_messages == []


async def _mail_server_down_then_back(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    port = free_port()
    settings = _settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port)
    queue = f"fault-{uuid.uuid4().hex[:6]}"
    request = make_request("automated")
    n = Negotiation(dev_env.client, request, tmp_path / "none")
    handler = MailHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    async with build_worker(dev_env.client, settings, task_queue=queue):
        await api.start_negotiation(dev_env.client, request, task_queue=queue)
        await asyncio.sleep(1.5)  # role cards fail: connection refused, retried with backoff
        assert (await n.status()).movement == Movement.PREPARATION
        controller.start()
        try:
            await n.until(lambda s: s.our_terms is not None, timeout=60)
        finally:
            controller.stop()
    role_cards = [r for r in handler.received if "/role-card/" in r.key]
    recipients = sorted(a for r in role_cards for a in r.rcpt_tos)
    assert recipients == sorted(p.email for p in request.participants)  # each exactly once


async def test_worker_loss_and_mail_server_outage_lose_nothing_and_send_nothing_twice(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    await asyncio.gather(
        _worker_goes_away(dev_env, tmp_path / "a"),
        _mail_server_down_then_back(dev_env, tmp_path / "b"),
    )
