"""Real processes for tests: a worker run as ``python -m workers.worker`` that a test can stop
with SIGTERM (telemetry, graceful shutdown) or SIGKILL and start again (faults), and an SMTP
server that stalls a delivery on purpose, so that a kill lands in the middle of an activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from temporalio.testing import WorkflowEnvironment

from tests.activities.smtp_test_server import MailHandler
from tests.encryption import TEST_KEY_FILE, TEST_SEAL_KEY_FILE
from workers.devserver import free_port
from workers.settings import Settings

#: How long a worker may take to connect and start polling, on a loaded two-core machine.
READY_SECONDS = 30.0

REPO = Path(__file__).resolve().parents[2]


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment of a worker process configured exactly as ``settings``.

    Nothing from the developer's shell steers it elsewhere: every FITNEST_ variable is dropped
    and every field of ``settings`` is written out.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITNEST_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"FITNEST_{name.upper()}"] = str(value)
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    return env


@dataclass
class WorkerProcess:
    """``python -m workers.worker`` with ``settings``, run in the log's folder (so no ``.env``
    file of the repository is read); its output goes to ``log``. It can be started again after
    a stop or a kill, and says how it ended."""

    settings: Settings
    log: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    #: The module run with ``python -m``: the product's worker, or a test's own entry point.
    module: str = "workers.worker"

    def log_text(self) -> str:
        """Everything the worker logged so far, over all its starts."""
        return self.log.read_text(errors="replace")

    @property
    def metrics_url(self) -> str:
        """The worker's Prometheus endpoint."""
        return f"http://127.0.0.1:{self.settings.metrics_port}/metrics"

    async def start(self) -> None:
        """Start the worker and return once it has started (it logs ``worker.started``).

        A worker that does not start in time is killed before the error is raised: callers
        start it outside their ``try``, so nothing else would stop it.
        """
        assert self.process is None, "already running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                cwd=self.log.parent,
                env=worker_environment(self.settings),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        loop = asyncio.get_running_loop()
        end = loop.time() + READY_SECONDS
        while self.log_text().count("worker.started") < self.starts:
            if self.process.returncode is not None or loop.time() > end:
                await self.kill()
                raise AssertionError(f"the worker did not start:\n{self.log_text()}")
            await asyncio.sleep(0.05)

    def terminate(self) -> None:
        """SIGTERM, as an operator would, without waiting: see :meth:`exited`."""
        assert self.process is not None, "not running"
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)

    async def exited(self, timeout: float = 20.0) -> int:
        """Wait until it has ended by itself; its exit code."""
        assert self.process is not None, "not running"
        code = await asyncio.wait_for(self.process.wait(), timeout)
        self.process = None
        return code

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no finishing of tasks in flight."""
        assert self.process is not None, "not running"
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.process = None

    async def stop(self) -> int | None:
        """SIGTERM; SIGKILL if it does not end within 20 s. Its exit code; None if not running."""
        if self.process is None:
            return None
        process = self.process
        self.terminate()
        try:
            return await self.exited(20)
        except TimeoutError:
            await self.kill()
            return process.returncode


async def start_worker(
    dev_env: WorkflowEnvironment, workdir: Path, **overrides: str | None
) -> WorkerProcess:
    """A started worker on the dev server with a task queue, folders and metrics port of its own,
    JSON logs and the suite's test keyring.

    ``overrides`` replace settings by variable name (``FITNEST_SMTP_PORT="2525"``); None leaves a
    setting unset.
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
        "FITNEST_KEY_FILE": str(TEST_KEY_FILE),
        "FITNEST_SEAL_KEY_FILE": str(TEST_SEAL_KEY_FILE),
    }
    values = {k: v for k, v in {**defaults, **overrides}.items() if v is not None}
    fields: dict[str, Any] = {k.removeprefix("FITNEST_").lower(): v for k, v in values.items()}
    worker = WorkerProcess(Settings(_env_file=None, **fields), workdir / "worker.log")  # type: ignore[call-arg]
    await worker.start()
    return worker


@dataclass
class StallingMailHandler(MailHandler):
    """Records what it accepts; while ``gate`` is shut, every delivery hangs at RCPT.

    It hangs before the message is accepted, so a sender killed meanwhile has delivered nothing:
    whatever arrives twice afterwards was sent twice. aiosmtpd runs in its own thread and loop,
    hence threading events.
    """

    gate: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if not self.gate.is_set():
            self.stalled.set()
            while not self.gate.is_set():
                await asyncio.sleep(0.02)
        return await super().handle_RCPT(server, session, envelope, address, options)

    def keys(self, negotiation_id: str) -> Counter[str]:
        """How often each notification of a negotiation arrived, by key without the id."""
        prefix = f"{negotiation_id}/"
        keys = (r.key for r in self.received)
        return Counter(k.removeprefix(prefix) for k in keys if k.startswith(prefix))


@contextlib.contextmanager
def smtp_server() -> Any:
    """A real SMTP server on a free port: yields (port, handler)."""
    handler = StallingMailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        handler.gate.set()
        controller.stop()
