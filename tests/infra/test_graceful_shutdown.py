"""A worker told to stop lets a running activity finish: nothing is cancelled, nothing retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from negotiation.models import NegotiationRequest
from starters.cli import fresh_request
from starters.client import start_negotiation
from tests.integration.processes import StallingMailHandler, smtp_server, start_worker
from workers.client import connect

REPO = Path(__file__).resolve().parents[2]
RENEWAL = REPO / "examples" / "automated_renewal.json"


async def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sigterm_lets_a_running_notification_finish_without_a_retry(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    with smtp_server() as (port, handler):
        handler.gate.clear()  # a slow SMTP server: every delivery hangs until the gate opens
        await _sigterm_while_mail_hangs(dev_env, tmp_path, port, handler)


async def _sigterm_while_mail_hangs(
    dev_env: WorkflowEnvironment, tmp_path: Path, port: int, handler: StallingMailHandler
) -> None:
    worker = await start_worker(
        dev_env,
        tmp_path,
        FITNEST_OUTBOX_DIR=None,
        FITNEST_SMTP_HOST="127.0.0.1",
        FITNEST_SMTP_PORT=str(port),
        FITNEST_GRACEFUL_SHUTDOWN_SECONDS="20",
    )
    client = await connect(worker.settings)
    template = NegotiationRequest.model_validate_json(RENEWAL.read_text())
    request = fresh_request(template, 0, datetime.now(UTC))
    try:
        await start_negotiation(client, request, task_queue=worker.settings.task_queue)
        await wait_for(handler.stalled.is_set, "the first notification to reach the SMTP server")

        worker.terminate()
        await wait_for(lambda: "worker.stopping" in worker.log_text(), "the worker to stop")
        handler.gate.set()
        assert await worker.exited(30) == 0, worker.log_text()

        history = await client.get_workflow_handle(
            f"{request.negotiation_id}/preparation"
        ).fetch_history()
        scheduled = {
            e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        completed = {
            e.activity_task_completed_event_attributes.scheduled_event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        }
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ]
        # The notification held by the SMTP server when SIGTERM came completed, first attempt.
        assert {"send_notification", "send_notifications"} & set(scheduled.values())
        assert set(scheduled) == completed
        assert attempts == [1] * len(scheduled)
        assert '"event": "notification.sent"' in worker.log_text()
    finally:
        await worker.stop()
        await client.get_workflow_handle(request.negotiation_id).terminate("test over")
