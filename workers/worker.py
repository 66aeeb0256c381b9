"""The worker process: hosts the negotiation workflow, its four movements and the activities.

``python -m workers.worker`` (or ``make worker``) runs one against the cluster named by the
environment (FITNEST_TEMPORAL_ADDRESS, FITNEST_NAMESPACE, FITNEST_TASK_QUEUE) until SIGINT/SIGTERM.
It logs in the format of ``FITNEST_LOG_FORMAT`` and serves Prometheus metrics on
``FITNEST_METRICS_PORT`` (``workers/telemetry.py``). On a stop signal it stops polling and gives
running activities ``FITNEST_GRACEFUL_SHUTDOWN_SECONDS`` to finish before cancelling them.

A worker that cannot reach Temporal keeps trying, with a back-off, and says so: each failure is
logged (``worker.temporal_unreachable``, with the next try's delay) and counted in the metric
``fitnest_worker_temporal_unreachable``. Once connected, the SDK's pollers retry a lost server
themselves (its warnings are in the log, its request failures in ``temporal_request_failure``).
A ledger database that is down fails sends retryably (``ledger.unavailable``,
``fitnest_ledger_unavailable``) and does not stop the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities import all_activities
from activities.ledger import describe_ledger
from workers import telemetry
from workers.client import ClusterUnreachable, connect
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

#: Seconds between tries to reach Temporal at start: doubling from the first to the last.
CONNECT_BACKOFF = (0.5, 15.0)

#: Builds the worker a process runs (``build_worker``; a test fleet registers workflows of its own).
WorkerBuilder = Callable[[Client, Settings], Worker]


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


async def connect_until_stopped(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Connect to Temporal, trying again with a back-off until it answers; None when ``stop``
    is set first. Every failure is logged and counted (``fitnest_worker_temporal_unreachable``)."""
    counter = Runtime.default().metric_meter.create_counter(
        "fitnest_worker_temporal_unreachable", "Failed tries of a worker to reach Temporal."
    )
    delay, longest = CONNECT_BACKOFF
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            return await connect(settings)
        except ClusterUnreachable as err:
            counter.add(1)
            log.warning(
                "worker.temporal_unreachable",
                address=settings.temporal_address,
                attempt=attempt,
                retry_in_seconds=delay,
                error=str(err),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, longest)
    return None


async def run(settings: Settings, build: WorkerBuilder = build_worker) -> None:
    """Run a worker until SIGINT or SIGTERM, then finish in-flight tasks and stop.

    Configures this process's logging and its metrics endpoint first; exits with status 1 when
    the metrics port cannot be bound. Waits for Temporal as long as it takes (see the module).
    """
    telemetry.configure_from(settings)
    try:
        # Every client of this process (the worker's) uses the runtime that serves /metrics.
        Runtime.set_default(telemetry.runtime(settings), error_if_already_set=True)
    except telemetry.MetricsUnavailable as err:
        log.error("worker.failed", error=str(err))
        raise SystemExit(1) from err
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = await connect_until_stopped(settings, stop)
    if client is None:
        log.info("worker.stopped", connected=False)
        return
    worker = build(client, settings)
    log.info(
        "worker.started",
        address=settings.temporal_address,
        namespace=settings.namespace,
        task_queue=settings.task_queue,
        metrics=telemetry.metrics_url(settings),
        ledger=describe_ledger(settings),
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
