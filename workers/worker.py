"""The worker process: hosts the negotiation workflow, its four movements and the activities.

``python -m workers.worker`` (or ``make worker``) runs one against the cluster named by the
environment (FITNEST_TEMPORAL_ADDRESS, FITNEST_NAMESPACE, FITNEST_TASK_QUEUE) until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities import all_activities
from workers.client import connect
from workers.codec import KeyringError
from workers.settings import Settings
from workflows.closure import ClosureMovement
from workflows.development import DevelopmentMovement
from workflows.negotiation import NegotiationWorkflow
from workflows.opening import OpeningMovement
from workflows.preparation import PreparationMovement

WORKFLOWS: Sequence[type] = (
    NegotiationWorkflow,
    PreparationMovement,
    OpeningMovement,
    DevelopmentMovement,
    ClosureMovement,
)

log = structlog.get_logger("fitnest.worker")


def build_worker(client: Client, settings: Settings, *, task_queue: str | None = None) -> Worker:
    """A worker for every Fitnest workflow and activity, configured from ``settings``.

    Payloads are sealed and opened by ``client``'s data converter (see :func:`connect`).
    ``settings.workflow_cache_size`` 0 makes every workflow task replay the whole history.
    """
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=all_activities(settings),
        max_cached_workflows=settings.workflow_cache_size,
    )


async def run(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM, then finish in-flight tasks and stop."""
    client = await connect(settings)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker.started",
        address=settings.temporal_address,
        namespace=settings.namespace,
        task_queue=settings.task_queue,
    )
    async with worker:
        await stop.wait()
        log.info("worker.stopping")
    log.info("worker.stopped")


def main() -> None:
    """Entry point of ``python -m workers.worker``; without a keyring it refuses to start."""
    try:
        asyncio.run(run(Settings()))
    except KeyringError as err:
        # Never run in plain text: a worker without keys would store deal terms unencrypted.
        print(f"error: the worker cannot start: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
