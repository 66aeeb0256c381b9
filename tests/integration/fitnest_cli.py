"""Drive negotiations through the real ``fitnest`` command, as an operator or a script would.

Every call is a fresh process (``asyncio.create_subprocess_exec``), so the worker running in the
test's event loop keeps serving workflow tasks while the command runs.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import sys
import sysconfig
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from temporalio.client import Client

from negotiation.models import NegotiationStatus, PendingDecision
from starters.client import get_status
from tests.encryption import TEST_KEY_FILE

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RESPONSES = EXAMPLES / "responses"
#: Between status queries while waiting: each query is a task for the worker in this process,
#: and a query racing a signal delays that signal's workflow task.
POLL_SECONDS = 0.25


def fitnest_argv() -> list[str]:
    """This environment's ``fitnest`` console script, or ``python -m starters.cli`` without one."""
    script = Path(sysconfig.get_path("scripts")) / "fitnest"
    return [str(script)] if script.exists() else [sys.executable, "-m", "starters.cli"]


@dataclass(frozen=True)
class Run:
    """One finished ``fitnest`` command."""

    args: tuple[str, ...]
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        command = f"fitnest {' '.join(self.args)} -> exit {self.rc}"
        return f"{command}\n--- stdout\n{self.out}--- stderr\n{self.err}"


class Fitnest:
    """The ``fitnest`` command, aimed at ``client``'s server and a task queue, run in ``workdir``.

    ``client`` (this process's) only waits for the status to change; everything asserted on is
    what the command did and printed.
    """

    def __init__(self, client: Client, task_queue: str, workdir: Path, outbox: Path) -> None:
        self.client = client
        self.task_queue = task_queue
        self.workdir = workdir
        self.outbox = outbox
        self.argv = fitnest_argv()
        # Nothing from the developer's shell or a .env file may steer the command elsewhere.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FITNEST_")}
        env.update(
            FITNEST_TEMPORAL_ADDRESS=client.service_client.config.target_host,
            FITNEST_NAMESPACE=client.namespace,
            FITNEST_TASK_QUEUE=task_queue,
            FITNEST_KEY_FILE=str(TEST_KEY_FILE),
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
            raise AssertionError(
                f"fitnest {' '.join(argv)} did not finish within {timeout} s"
            ) from None
        assert proc.returncode is not None
        return Run(argv, proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str | Path) -> Run:
        """Run a command that must succeed."""
        run = await self(*args)
        assert run.rc == 0, str(run)
        return run

    async def decide(
        self, negotiation_id: str, request_id: str, approver: str, verdict: str, *more: str | Path
    ) -> Run:
        """``fitnest decide ID REQUEST --approver A --verdict V [MORE...]``."""
        args = ("--approver", approver, "--verdict", verdict, *more)
        return await self("decide", negotiation_id, request_id, *args)

    async def approve(self, negotiation_id: str, request_id: str, approver: str) -> Run:
        """An approval that must be accepted."""
        run = await self.decide(negotiation_id, request_id, approver, "approve")
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
        poll_with_cli: bool = False,
    ) -> NegotiationStatus:
        """``fitnest status --json`` once ``check`` holds; fails with the last status otherwise.

        Waiting polls the status query from this process (a process per poll would cost half a
        second of CPU each); the status returned, and checked again, is the one the command
        prints. ``poll_with_cli`` polls with the command itself, once a second.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            if not poll_with_cli:
                status = await get_status(self.client, negotiation_id)
                if not check(status):
                    if loop.time() > end:
                        raise AssertionError(
                            f"{negotiation_id}: never {what} within {timeout} s; last status:\n"
                            f"{status.model_dump_json(indent=1)}"
                        )
                    await asyncio.sleep(POLL_SECONDS)
                    continue
            status = await self.status(negotiation_id)
            if check(status):
                return status
            if loop.time() > end:
                raise AssertionError(
                    f"{negotiation_id}: `fitnest status` never showed it {what} "
                    f"within {timeout} s; "
                    f"last status:\n{status.model_dump_json(indent=1)}"
                )
            await asyncio.sleep(1.0 if poll_with_cli else POLL_SECONDS)

    async def pending(
        self, negotiation_id: str, role: str, kind: str | None = None
    ) -> PendingDecision:
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
        return await self.until(
            negotiation_id, lambda s: s.outcome is not None, "closed", timeout=timeout
        )

    def request(self, example: str, prefix: str, **changes: Any) -> tuple[str, Path]:
        """An example request with a fresh negotiation id, written to the work folder.

        ``changes`` replace fields ('__' separates nested names, e.g. ``mandate__deadline``).
        Returns the id and the file.
        """
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

    def mail(self, negotiation_id: str) -> list[EmailMessage]:
        """The notifications the worker wrote to the outbox for one negotiation."""
        if not self.outbox.exists():
            return []
        found = []
        for path in sorted(self.outbox.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            if str(msg.get("X-Fitnest-Idempotency-Key", "")).startswith(f"{negotiation_id}/"):
                found.append(msg)
        return found

    def mail_of_kind(self, negotiation_id: str, kind: str) -> list[EmailMessage]:
        """The outbox messages of one kind ('offer', 'handoff', 'decision_request'...)."""
        return [m for m in self.mail(negotiation_id) if m.get("X-Fitnest-Kind") == kind]
