"""A real worker process (``python -m workers.worker``) against the shared dev server.

Not a test module: the telemetry and shutdown tests start workers through it. Each worker gets
its own task queue, folders and metrics port, so tests running beside it are not disturbed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from workers.devserver import free_port
from workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    """A worker subprocess, the settings it runs with, and the file its logs go to."""

    process: subprocess.Popen[bytes]
    settings: Settings
    env: dict[str, str]
    log_file: Path

    def log_text(self) -> str:
        """Everything the worker logged so far."""
        return self.log_file.read_text(errors="replace")

    @property
    def metrics_url(self) -> str:
        """The worker's Prometheus endpoint."""
        return f"http://127.0.0.1:{self.settings.metrics_port}/metrics"

    def stop(self) -> int:
        """Stop it (SIGTERM, then SIGKILL after a grace period) and return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


async def start_worker(
    dev_env: WorkflowEnvironment, workdir: Path, **overrides: str | None
) -> WorkerProcess:
    """Start a worker with JSON logs and metrics on a free port; return once it polls.

    ``overrides`` replace settings by variable name; None leaves a setting unset.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    defaults = {
        "FITNEST_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "FITNEST_NAMESPACE": dev_env.client.namespace,
        "FITNEST_TASK_QUEUE": f"ops-{uuid.uuid4().hex[:10]}",
        "FITNEST_OUTBOX_DIR": str(workdir / "outbox"),
        "FITNEST_LEDGER_DIR": str(workdir / "ledger"),
        "FITNEST_METRICS_PORT": str(free_port()),
        "FITNEST_LOG_FORMAT": "json",
        # The suite's committed test keyring, for a worker that encrypts payloads.
        "FITNEST_KEY_FILE": str(REPO / "tests" / "test-keyring.json"),
    }
    values = {k: v for k, v in {**defaults, **overrides}.items() if v is not None}
    # Nothing from the developer's shell may steer the worker elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITNEST_")}
    env.update(values, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    fields: dict[str, Any] = {k.removeprefix("FITNEST_").lower(): v for k, v in values.items()}
    settings = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    log_file = workdir / "worker.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.worker"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, settings, env, log_file)
    await _wait_until_polling(dev_env.client, worker)
    return worker


async def _wait_until_polling(client: Client, worker: WorkerProcess) -> None:
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=worker.settings.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    for _ in range(300):
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker exited early:\n{worker.log_text()}")
        if (await client.workflow_service.describe_task_queue(request)).pollers:
            return
        await asyncio.sleep(0.1)
    worker.stop()
    raise AssertionError(f"the worker never polled its task queue:\n{worker.log_text()}")
