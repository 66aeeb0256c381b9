"""``python -m tests.fleet.worker``: the product's worker process (``workers.worker.run``: its
settings, logging, Temporal back-off, signals and graceful shutdown) hosting the fleet test's
workflow and the product's ``send_notification`` activity, wired to the ledger and SMTP server
its environment names."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.notifications import Notifier
from tests.fleet.workflow import FleetNotifications
from workers.process import exit_process
from workers.settings import Settings
from workers.worker import run


def build_fleet_worker(client: Client, settings: Settings) -> Worker:
    """A worker of the fleet workflow and the real notification activity."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
        workflows=[FleetNotifications],
        activities=[Notifier.from_settings(settings).send_notification],
    )


if __name__ == "__main__":
    asyncio.run(run(Settings(), build=build_fleet_worker))
    exit_process(0)
