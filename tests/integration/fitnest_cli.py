"""Drive negotiations through the real ``fitnest`` command, as an operator or a backend script would.

Every call is a fresh process (``asyncio.create_subprocess_exec``), so the worker running in the
test's event loop keeps serving workflow tasks while the command runs.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import shutil
import sys
import sysconfig
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from negotiation.models import NegotiationStatus, PendingDecision

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RESPONSES = EXAMPLES / "responses"


def fitnest_argv() -> list[str]:
    """The installed ``fitnest`` console script, or ``python -m starters.cli`` when it is missing."""
    script = Path(sysconfig.get_path("scripts")) / "fitnest"
    found = str(script) if script.exists() else shutil.which("fitnest")
    return [found] if found else [sys.executable, "-m", "starters.cli"]


@dataclass(frozen=True)
class Run:
    """One finished ``fitnest`` command."""

    args: tuple[str, ...]
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"fitnest {' '.join(self.args)} -> exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


class Fitnest:
    """The ``fitnest`` command, pointed at one Temporal server and task queue, run from ``workdir``."""

    def __init__(self, address: str, task_queue: str, workdir: Path, outbox: Path) -> None:
        self.task_queue = task_queue
        self.workdir = workdir
        self.outbox = outbox
        self.argv = fitnest_argv()
        # Nothing from the developer's shell or a .env file may steer the command elsewhere.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FITNEST_")}
        env.update(
            FITNEST_TEMPORAL_ADDRESS=address,
            FITNEST_NAMESPACE="default",
            FITNEST_TASK_QUEUE=task_queue,
            PYTHONUNBUFFERED="1",
        )
        self.env = env

    async def __call__(self, *args: str | Path, timeout: float = 60.0) -> Run:
        """Run ``fitnest ARGS`` and return its exit code and output."""
        argv = tuple(str(a) for a in args)
        proc = await asyncio.create_subprocess_exec(
            *self.argv,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            env=self.env,
            cwd=self.workdir,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"fitnest {' '.join(argv)} did not finish within {timeout} s") from None
        assert proc.returncode is not None
        return Run(argv, proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str | Path) -> Run:
        """Run a command that must succeed."""
        run = await self(*args)
        assert run.rc == 0, str(run)
        return run

    async def status(self, negotiation_id: str) -> NegotiationStatus:
        """``fitnest status ID --json``, parsed."""
        run = await self.ok("status", negotiation_id, "--json")
        return NegotiationStatus.model_validate_json(run.out)

    async def until(
        self,
        negotiation_id: str,
        check: Callable[[NegotiationStatus], bool],
        what: str,
        *,
        timeout: float = 30.0,
        interval: float = 0.2,
    ) -> NegotiationStatus:
        """Poll ``fitnest status --json`` until ``check`` holds; fail with the last status if it never does."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        status = await self.status(negotiation_id)
        while not check(status):
            if loop.time() > end:
                raise AssertionError(
                    f"{negotiation_id}: never {what} within {timeout} s; last status:\n"
                    f"{status.model_dump_json(indent=1)}"
                )
            await asyncio.sleep(interval)
            status = await self.status(negotiation_id)
        return status

    async def pending(self, negotiation_id: str, role: str, kind: str | None = None) -> PendingDecision:
        """Wait for a decision request to ``role`` (of ``kind``) and return it."""

        def match(p: PendingDecision) -> bool:
            return p.role.value == role and (kind is None or p.kind.value == kind)

        status = await self.until(
            negotiation_id,
            lambda s: any(match(p) for p in s.pending_decisions),
            f"asked {role} for {kind or 'a decision'}",
        )
        return next(p for p in status.pending_decisions if match(p))

    async def closed(self, negotiation_id: str, timeout: float = 30.0) -> NegotiationStatus:
        """Wait for the negotiation's outcome."""
        return await self.until(negotiation_id, lambda s: s.outcome is not None, "closed", timeout=timeout)

    def request(self, example: str, prefix: str, **changes: Any) -> tuple[str, Path]:
        """An example request with a fresh negotiation id (and ``changes`` applied, '__' for nesting),
        written to the work folder; returns the id and the file."""
        data = json.loads((EXAMPLES / example).read_text())
        negotiation_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        data["negotiation_id"] = negotiation_id
        for key, value in changes.items():
            target = data
            *path, last = key.split("__")
            for part in path:
                target = target[part]
            target[last] = value
        path = self.workdir / f"{negotiation_id}.json"
        path.write_text(json.dumps(data, indent=2))
        return negotiation_id, path

    def write(self, name: str, data: Mapping[str, Any] | str) -> Path:
        """A file in the work folder (JSON for a mapping)."""
        path = self.workdir / name
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
        return path

    def mail(self, negotiation_id: str) -> list[Message]:
        """The notifications the worker wrote to the outbox for one negotiation."""
        if not self.outbox.exists():
            return []
        found = []
        for path in sorted(self.outbox.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes())
            if str(msg.get("X-Fitnest-Idempotency-Key", "")).startswith(f"{negotiation_id}/"):
                found.append(msg)
        return found

    def mail_of_kind(self, negotiation_id: str, kind: str) -> list[Message]:
        """The outbox messages of one kind ('offer', 'handoff', 'decision_request'...)."""
        return [m for m in self.mail(negotiation_id) if m.get("X-Fitnest-Kind") == kind]
