"""The sent ledger in PostgreSQL: one store for every worker, on any number of hosts.

Two tables, each keyed by the idempotency key (a primary key: one row per key, whoever writes it):

* ``fitnest_notification_claims``: a row per key that is (or was) being sent. A send holds the
  row with ``SELECT ... FOR UPDATE NOWAIT`` in a transaction that stays open until the send has
  been recorded; another attempt, on any host, finds the row locked and gets
  :class:`NotificationInProgress` at once. A worker that dies lets go of its connection, and
  PostgreSQL lets go of the lock: on a killed process at once, on a vanished host within about 30
  seconds (TCP keepalives, set per session below).
* ``fitnest_sent_notifications``: what each key's channels delivered, committed (on a second
  connection, so the claim stays held) after each channel.

Claims and records use two pools, so a send never waits for a connection while holding one. A
database that does not answer within ``timeout`` seconds makes the send fail with the retryable
:class:`LedgerUnavailable`, logged as ``ledger.unavailable`` and counted in the worker's metric
``fitnest_ledger_unavailable``; the pools keep reconnecting in the background.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg_pool
import structlog
from psycopg.conninfo import conninfo_to_dict
from temporalio import activity

from activities.durable import key_digest
from activities.errors import LedgerUnavailable, NotificationInProgress
from activities.ledger import Claim, LedgerEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS fitnest_notification_claims (
    idempotency_key text PRIMARY KEY,
    claimed_by text,
    claimed_at timestamptz
);
CREATE TABLE IF NOT EXISTS fitnest_sent_notifications (
    idempotency_key text PRIMARY KEY,
    channels text[] NOT NULL,
    complete boolean NOT NULL,
    updated_at timestamptz NOT NULL
);
"""
#: Serialises CREATE TABLE IF NOT EXISTS across hosts starting at once (it is not race-free).
_SCHEMA_LOCK = 0x66_69_74_6E_65_73_74  # "fitnest"

#: Per-session settings. Keepalives let the server notice a vanished host and let go of its
#: claims. A claim idle for 5 minutes (a hung worker: every SMTP step has a 10 s timeout, an
#: attempt 60 s) is ended by the server, so that a frozen process cannot hold a key for ever;
#: if it wakes up and sends after that, the key can go out twice (documented).
SESSION_OPTIONS = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 "
    "-c idle_in_transaction_session_timeout=300000 -c lock_timeout=5000"
)
#: Tries of a record after the mail server accepted (a database restarting for a moment).
RECORD_TRIES = 5

log = structlog.get_logger(__name__)


def _count_unavailable(operation: str) -> None:
    """Count an unreachable database in the worker's metrics (inside an activity only)."""
    if activity.in_activity():
        counter = activity.metric_meter().create_counter(
            "fitnest_ledger_unavailable",
            "Sends that could not reach the sent-notification ledger's database.",
        )
        counter.add(1, {"operation": operation})


def describe_url(url: str) -> str:
    """A libpq URL's host, port, database and user, for logs: the password never."""
    parts = conninfo_to_dict(url)
    where = f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}"
    return f"postgresql {where}/{parts.get('dbname', '')} as {parts.get('user', '')}"


class _PostgresClaim:
    """A held claim: the key's entry when claimed, and records through the ledger."""

    def __init__(self, ledger: PostgresLedger, key: str, entry: LedgerEntry | None) -> None:
        self._ledger, self._key, self._entry = ledger, key, entry

    @property
    def entry(self) -> LedgerEntry | None:
        """The key's entry as it stood when claimed."""
        return self._entry

    async def record(self, channels: tuple[str, ...], complete: bool) -> LedgerEntry:
        """Commit the record, trying again for a few seconds: the mail server has the message
        already, and giving up here is what would make the retry send it twice."""
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                return await self._ledger.record(self._key, channels, complete)
            except LedgerUnavailable:
                if attempt == RECORD_TRIES:
                    raise
                await asyncio.sleep(0.5 * attempt)
        raise AssertionError("unreachable")


class PostgresLedger:
    """The sent ledger in a PostgreSQL database named by a libpq URL."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        max_sends: int = 10,
        timeout: float = 5.0,
    ) -> None:
        """Connect (at the first send) to ``url``; ``max_sends`` claims may be held at once."""
        self.url = url
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(timeout)),
            "application_name": "fitnest-ledger",
            "options": SESSION_OPTIONS,
        }
        if password:
            kwargs["password"] = password

        def pool(name: str, size: int) -> psycopg_pool.AsyncConnectionPool:
            return psycopg_pool.AsyncConnectionPool(
                url,
                kwargs=kwargs,
                min_size=1,
                max_size=size,
                open=False,
                timeout=timeout,
                name=name,
                check=psycopg_pool.AsyncConnectionPool.check_connection,
                # No background back-off that could grow to minutes: each send that needs a
                # connection tries afresh, and Temporal retries the send.
                reconnect_timeout=0,
            )

        self._claims = pool("fitnest-ledger-claims", max_sends)
        self._records = pool("fitnest-ledger-records", 2)
        self._ready = False
        self._opening = asyncio.Lock()

    def describe(self) -> str:
        """Host, port, database and user (the password never)."""
        return describe_url(self.url)

    async def _open(self) -> None:
        """Open the pools and make the tables, once; retried at the next send if it fails."""
        if self._ready:
            return
        async with self._opening:
            if self._ready:
                return
            await self._claims.open(wait=False)
            await self._records.open(wait=False)
            async with self._records.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                await conn.execute(SCHEMA)
            self._ready = True

    async def close(self) -> None:
        """Close both pools."""
        await self._claims.close()
        await self._records.close()

    @asynccontextmanager
    async def _unavailable_as(self, operation: str, key: str) -> AsyncIterator[None]:
        """Database errors as :class:`LedgerUnavailable`, logged and counted; no key in clear."""
        try:
            yield
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError) as err:
            _count_unavailable(operation)
            log.warning(
                "ledger.unavailable",
                operation=operation,
                key_hash=key_digest(key)[:16],
                ledger=self.describe(),
                error_type=type(err).__name__,
            )
            raise LedgerUnavailable(
                f"the sent-notification ledger ({self.describe()}) cannot be reached "
                f"({type(err).__name__})"
            ) from None

    async def entry(self, key: str) -> LedgerEntry | None:
        """The entry for ``key``, or None when nothing was delivered under it yet."""
        async with self._unavailable_as("read", key):
            await self._open()
            async with self._records.connection() as conn:
                return await _read(conn, key)

    async def record(self, key: str, channels: tuple[str, ...], complete: bool) -> LedgerEntry:
        """Commit that ``channels`` delivered ``key``; ``complete`` once all have."""
        entry = LedgerEntry(
            idempotency_key=key, channels=channels, complete=complete, updated_at=datetime.now(UTC)
        )
        async with self._unavailable_as("record", key):
            await self._open()
            async with self._records.connection() as conn:
                await conn.execute(
                    "INSERT INTO fitnest_sent_notifications AS s "
                    "(idempotency_key, channels, complete, updated_at) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (idempotency_key) DO UPDATE SET channels = EXCLUDED.channels, "
                    "complete = EXCLUDED.complete, updated_at = EXCLUDED.updated_at",
                    (key, list(channels), complete, entry.updated_at),
                )
        return entry

    @asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[Claim]:
        """Hold ``key``'s claim row locked until the block ends (see the module's docstring).

        The records are committed on their own connection as the send goes; ending the claim's
        transaction only lets go of the lock, so a connection lost meanwhile loses no record
        (the retry then finds the key delivered).
        """
        async with self._unavailable_as("claim", key):
            await self._open()
            async with self._claims.connection() as conn, conn.transaction():
                if not await _lock(conn, key):
                    # First send of this key: make its row (committed at once, by itself, so
                    # no other session waits on it), then lock it like any other.
                    async with self._records.connection() as other:
                        await other.execute(
                            "INSERT INTO fitnest_notification_claims (idempotency_key, claimed_by, "
                            "claimed_at) VALUES (%s, %s, now()) ON CONFLICT DO NOTHING",
                            (key, HOLDER),
                        )
                    if not await _lock(conn, key):
                        raise LedgerUnavailable("a claim row vanished while it was being made")
                entry = await _read(conn, key)
                yield _PostgresClaim(self, key, entry)


async def _lock(conn: psycopg.AsyncConnection[Any], key: str) -> bool:
    """Lock ``key``'s claim row in ``conn``'s transaction: True when held, False when there is
    no row yet; :class:`NotificationInProgress` when another session holds it."""
    try:
        cur = await conn.execute(
            "SELECT 1 FROM fitnest_notification_claims WHERE idempotency_key = %s "
            "FOR UPDATE NOWAIT",
            (key,),
        )
    except psycopg.errors.LockNotAvailable:
        raise NotificationInProgress(
            f"notification {key_digest(key)[:16]} is being sent by another attempt"
        ) from None
    return await cur.fetchone() is not None


#: Who first claimed a key, for an operator reading the table: process and host.
HOLDER = f"{os.getpid()}@{socket.gethostname()}"


async def _read(conn: psycopg.AsyncConnection[Any], key: str) -> LedgerEntry | None:
    """The key's row of ``fitnest_sent_notifications``, as an entry."""
    cur = await conn.execute(
        "SELECT channels, complete, updated_at FROM fitnest_sent_notifications "
        "WHERE idempotency_key = %s",
        (key,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    channels, complete, updated_at = row
    return LedgerEntry(
        idempotency_key=key, channels=tuple(channels), complete=complete, updated_at=updated_at
    )
