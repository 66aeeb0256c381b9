"""The fleet tests' stage: worker processes that share nothing but Temporal and the PostgreSQL
ledger, and a real SMTP server that stalls on purpose and counts what it accepts.

Each worker runs in a folder of its own (its working directory, ledger folder and logs), as a
host would; none of them can see another's files. The mail server is the judge: a notification
that reaches it twice was sent twice, whatever any ledger says.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiosmtpd.controller import Controller

from tests.encryption import TEST_KEY_FILE, TEST_SEAL_KEY_FILE
from tests.integration.processes import StallingMailHandler, WorkerProcess
from workers.devserver import free_port
from workers.settings import Settings

#: Generous bounds: they stop a hang, they time nothing.
EVENT_SECONDS = 120.0


@dataclass
class FleetMail(StallingMailHandler):
    """The stalling SMTP server of :mod:`tests.integration.processes`, which also tells how many
    sessions it holds at RCPT and how many are past RCPT but not yet answered at DATA.

    A sender killed while held at RCPT has delivered nothing (aiosmtpd cancels the held handler
    when the connection drops). A sender killed past RCPT may have delivered: kills wait until
    :attr:`past_rcpt` is empty.
    """

    held: int = 0
    past_rcpt: set[int] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.held += 1
        try:
            reply = await super().handle_RCPT(server, session, envelope, address, options)
        finally:
            self.held -= 1
        if reply.startswith("250"):
            self.past_rcpt.add(id(session))
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.past_rcpt.discard(id(session))

    def counts(self, prefix: str) -> Counter[str]:
        """How often each key under ``prefix`` arrived."""
        return Counter(r.key for r in self.received if r.key.startswith(prefix))


@contextlib.contextmanager
def fleet_mail() -> Iterator[tuple[int, FleetMail]]:
    """A :class:`FleetMail` server on a free port: yields (port, handler).

    The held count is read from the test's loop while aiosmtpd's thread changes it; an int read is
    atomic in CPython, and every check that uses it is repeated until it holds.
    """
    handler = FleetMail()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, handler
    finally:
        handler.gate.set()
        controller.stop()


def worker_settings(
    home: Path, address: str, task_queue: str, smtp_port: int, ledger_url: str
) -> Settings:
    """A fleet worker's settings: shared Temporal and ledger, everything else its own."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=address,
        task_queue=task_queue,
        key_file=TEST_KEY_FILE,
        seal_key_file=TEST_SEAL_KEY_FILE,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        # Longer than any stall the tests make: a held session is released, not timed out.
        smtp_timeout_seconds=60,
        ledger_url=ledger_url,
        ledger_dir=home / "ledger-unused",
        ledger_max_sends=20,
        metrics_port=0,  # no port to race for (see tests/integration/test_process_faults.py)
        log_format="json",
        graceful_shutdown_seconds=15,
    )


def fleet_workers(
    root: Path, names: list[str], address: str, smtp_port: int, ledger_url: str
) -> tuple[str, list[WorkerProcess]]:
    """Worker processes (not started) on one new task queue, each in a folder of its own."""
    task_queue = f"fleet-{uuid.uuid4().hex[:10]}"
    workers = []
    for name in names:
        home = root / name
        home.mkdir(parents=True)
        settings = worker_settings(home, address, task_queue, smtp_port, ledger_url)
        workers.append(WorkerProcess(settings, home / "worker.log", module="tests.fleet.worker"))
    return task_queue, workers


async def until(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Return once ``check`` holds; fail naming ``what`` after :data:`EVENT_SECONDS`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + EVENT_SECONDS
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if loop.time() > end:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


async def recorded_by_smtp(ledger_url: str, prefix: str) -> set[str]:
    """Keys under ``prefix`` whose SMTP delivery the ledger has committed."""
    async with await psycopg.AsyncConnection.connect(ledger_url, autocommit=True) as conn:
        try:
            cur = await conn.execute(
                "SELECT idempotency_key FROM fitnest_sent_notifications "
                "WHERE 'smtp' = ANY(channels) AND starts_with(idempotency_key, %s)",
                (prefix,),
            )
        except psycopg.errors.UndefinedTable:
            return set()
        return {row[0] for row in await cur.fetchall()}


async def quiet_at_the_mail_server(mail: FleetMail, ledger_url: str, prefix: str) -> None:
    """With the gate shut, wait until a kill cannot land between an SMTP accept and its record:
    at least one send is held at RCPT (so the kill lands mid-activity), none is past RCPT, and
    every message the server accepted is recorded in the ledger."""

    async def quiet() -> bool:
        if mail.held < 1 or mail.past_rcpt:
            return False
        accepted = set(mail.counts(prefix))
        return accepted <= await recorded_by_smtp(ledger_url, prefix)

    await until(quiet, "a send is held at the mail server and every accepted one is recorded")


def log_count(workers: list[WorkerProcess], event: str) -> int:
    """How many lines of the workers' logs (over all their starts) name ``event``."""
    return sum(w.log_text().count(f'"{event}"') for w in workers if w.log.exists())
