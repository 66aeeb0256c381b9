"""The worker process: hosts the negotiation workflow, its four movements and the activities.

``python -m workers.worker`` (or ``make worker``) runs one against the cluster named by the
environment (FITNEST_TEMPORAL_ADDRESS, FITNEST_NAMESPACE, FITNEST_TASK_QUEUE) until SIGINT/SIGTERM.
It logs in the format of ``FITNEST_LOG_FORMAT`` and serves Prometheus metrics on
``FITNEST_METRICS_PORT`` (``workers/telemetry.py``). On a stop signal it stops polling and gives
running activities ``FITNEST_GRACEFUL_SHUTDOWN_SECONDS`` to finish before cancelling them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities import all_activities
from workers import telemetry
from workers.client import connect
from workers.codec import EncryptionCodec, KeyringError, WorkerCodec, load_seal_keys
from workers.process import exit_process
from workers.settings import Settings
from workflows import seal
from workflows.closure import ClosureMovement
from workflows.development import DevelopmentMovement
from workflows.legacy.closure import LegacyClosureMovement
from workflows.legacy.development import LegacyDevelopmentMovement
from workflows.legacy.opening import LegacyOpeningMovement
from workflows.legacy.preparation import LegacyPreparationMovement
from workflows.negotiation import NegotiationWorkflow
from workflows.opening import OpeningMovement
from workflows.preparation import PreparationMovement

#: Release 4's movements, for negotiations started before the one-hop path (``workflows.legacy``:
#: marked for removal).
LEGACY_MOVEMENTS: Sequence[type] = (
    LegacyPreparationMovement,
    LegacyOpeningMovement,
    LegacyDevelopmentMovement,
    LegacyClosureMovement,
)
WORKFLOWS: Sequence[type] = (
    NegotiationWorkflow,
    PreparationMovement,
    OpeningMovement,
    DevelopmentMovement,
    ClosureMovement,
    *LEGACY_MOVEMENTS,
)

log = structlog.get_logger("fitnest.worker")


def worker_client(client: Client) -> Client:
    """``client`` with the worker's codec: payloads it cannot open reach the workflow marked
    unreadable (and are recorded as rejected) instead of failing the workflow task."""
    codec = client.data_converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        return client
    converter = dataclasses.replace(client.data_converter, payload_codec=WorkerCodec(codec))
    config = client.config()
    config["data_converter"] = converter
    return Client(**config)


def build_worker(client: Client, settings: Settings, *, task_queue: str | None = None) -> Worker:
    """A worker for every Fitnest workflow and activity, configured from ``settings``.

    Payloads are sealed and opened by ``client``'s data converter (see :func:`connect`).
    ``settings.max_cached_workflows`` 0 makes every workflow task replay the whole history.
    """
    # The seal keyring is read from the file when there is one; a process that installed keys
    # already (the tests, a second worker in it) may go without. No keys at all: KeyringError.
    if settings.seal_key_file.exists() or not seal.installed():
        seal.install(load_seal_keys(settings.seal_key_file))
    return Worker(
        worker_client(client),
        task_queue=task_queue or settings.task_queue,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
        workflows=list(WORKFLOWS),
        activities=all_activities(settings),
        max_cached_workflows=settings.max_cached_workflows,
    )


async def run(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM, then finish in-flight tasks and stop.

    Configures this process's logging and its metrics endpoint first; exits with status 1 when
    the metrics port cannot be bound.
    """
    telemetry.configure_from(settings)
    try:
        # Every client of this process (the worker's) uses the runtime that serves /metrics.
        Runtime.set_default(telemetry.runtime(settings), error_if_already_set=True)
    except telemetry.MetricsUnavailable as err:
        log.error("worker.failed", error=str(err))
        raise SystemExit(1) from err
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
        metrics=telemetry.metrics_url(settings),
        graceful_shutdown_seconds=settings.graceful_shutdown_seconds,
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
        exit_process(2)


if __name__ == "__main__":
    main()
    exit_process(0)  # skip interpreter finalization (see workers.process)
