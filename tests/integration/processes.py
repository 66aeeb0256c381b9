"""Real processes for fault injection: a worker run as ``python -m workers.worker`` that a test can
SIGKILL, a Temporal dev server on a SQLite file that a test can stop and start again, and an SMTP
server that stalls a delivery on purpose, so that a kill lands in the middle of an activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.activities.smtp_test_server import MailHandler
from workers.devserver import free_port
from workers.settings import Settings

#: How long a worker may take to connect and start polling, on a loaded two-core machine.
READY_SECONDS = 30.0


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment of a worker process configured exactly as ``settings``.

    Nothing from the developer's shell steers it elsewhere: every FITNEST_ variable is dropped
    and every field of ``settings`` is written out.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITNEST_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"FITNEST_{name.upper()}"] = str(value)
    # Metrics (when the worker serves them) on a free port: other tests run at the same time.
    env["FITNEST_METRICS_PORT"] = str(free_port())
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class WorkerProcess:
    """``python -m workers.worker`` with ``settings``; its output goes to ``log``."""

    settings: Settings
    log: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self) -> None:
        """Start the worker and return once it polls its task queue."""
        assert self.process is None, "already running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers.worker",
                env=worker_environment(self.settings),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        loop = asyncio.get_running_loop()
        end = loop.time() + READY_SECONDS
        while self.log.read_text(errors="replace").count("worker.started") < self.starts:
            if self.process.returncode is not None or loop.time() > end:
                raise AssertionError(f"the worker did not start:\n{self.log.read_text()}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no finishing of tasks in flight."""
        assert self.process is not None, "not running"
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.process = None

    async def stop(self) -> None:
        """SIGTERM, as an operator would; SIGKILL if it does not end."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            await self.kill()
        self.process = None


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
