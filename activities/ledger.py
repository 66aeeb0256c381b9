"""The sent ledger: which notifications went out, durably, so none is sent twice.

Two stores behind one interface (:class:`Ledger`):

* :class:`SentLedger`, the embedded default (``make up``, one machine): one small JSON marker per
  idempotency key, named by the key's hash and replaced atomically after each channel delivers,
  and a per-key lock file (``flock``) that keeps two attempts in processes *sharing the folder*
  from both sending.
* :class:`~activities.ledger_postgres.PostgresLedger` (``FITNEST_LEDGER_URL``): the same records
  in PostgreSQL, with a row lock per key, so workers on any number of hosts agree.

A claim (:meth:`Ledger.claim`) is held for the whole send and let go only after the record is
written; the :class:`~activities.notifications.Notifier` keeps it held even when the activity is
cancelled mid-send (its attempt timed out), until the send in flight has finished and been
recorded.

What no store can do: if a worker dies after the mail server accepted a message and before the
record is committed, the retry sends again. That window is milliseconds; the deterministic
Message-ID (see :mod:`activities.channels`) lets receiving systems drop the copy.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.durable import key_digest, write_atomically
from activities.errors import LedgerUnreadable, NotificationInProgress

if TYPE_CHECKING:
    from workers.settings import Settings


class LedgerEntry(BaseModel):
    """What the ledger knows about one idempotency key."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    idempotency_key: str = Field(description="The key, in clear: it names no deal terms.")
    channels: tuple[str, ...] = Field(default=(), description="Channels that have delivered it.")
    complete: bool = Field(default=False, description="Every configured channel delivered it.")
    updated_at: datetime = Field(description="When this entry was last written (UTC).")


class Claim(Protocol):
    """One key held exclusively while it is sent."""

    @property
    def entry(self) -> LedgerEntry | None:
        """The key's entry as it stood when claimed (None: nothing delivered yet)."""
        ...

    async def record(self, channels: tuple[str, ...], complete: bool) -> LedgerEntry:
        """Durably record that ``channels`` delivered the key; ``complete`` once all have."""
        ...


class Ledger(Protocol):
    """Where deliveries are recorded and sends are claimed."""

    def claim(self, key: str) -> AbstractAsyncContextManager[Claim]:
        """Hold ``key`` while sending. Raises :class:`NotificationInProgress` at once (no waiting
        inside an activity) when another attempt, on any worker sharing the store, holds it."""
        ...

    def describe(self) -> str:
        """Where the ledger is, for the worker's start line (never a password)."""
        ...

    async def close(self) -> None:
        """Let go of connections; the ledger may not be used afterwards."""
        ...


class _FileClaim:
    """A claim on a :class:`SentLedger` key: records go to its marker file."""

    def __init__(self, ledger: SentLedger, key: str, entry: LedgerEntry | None) -> None:
        self._ledger, self._key, self._entry = ledger, key, entry

    @property
    def entry(self) -> LedgerEntry | None:
        """The key's entry as it stood when claimed."""
        return self._entry

    async def record(self, channels: tuple[str, ...], complete: bool) -> LedgerEntry:
        """Write the marker (in a thread: it fsyncs)."""
        return await asyncio.to_thread(self._ledger.record, self._key, channels, complete)


class SentLedger:
    """A directory of markers, one per delivered (or partly delivered) notification."""

    def __init__(self, directory: Path) -> None:
        """Use ``directory``, creating it now so a bad path fails at worker start, not at send."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str, suffix: str) -> Path:
        return self.directory / f"{key_digest(key)}{suffix}"

    def describe(self) -> str:
        """The folder: only processes that share it agree on what was sent."""
        return f"files in {self.directory}"

    async def close(self) -> None:
        """Nothing to let go of."""

    def entry(self, key: str) -> LedgerEntry | None:
        """The entry for ``key``, or None when nothing was delivered under it yet."""
        path = self._path(key, ".json")
        try:
            entry = LedgerEntry.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as err:
            raise LedgerUnreadable(
                f"sent-ledger marker {path} cannot be read: {type(err).__name__}"
            ) from None
        if entry.idempotency_key != key:  # a SHA-256 collision, or a file copied by hand
            raise LedgerUnreadable(f"sent-ledger marker {path} belongs to another key")
        return entry

    def record(self, key: str, channels: tuple[str, ...], complete: bool) -> LedgerEntry:
        """Durably record that ``channels`` delivered ``key``; ``complete`` once all have."""
        entry = LedgerEntry(
            idempotency_key=key, channels=channels, complete=complete, updated_at=datetime.now(UTC)
        )
        write_atomically(self._path(key, ".json"), entry.model_dump_json().encode("utf-8"))
        return entry

    @asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[Claim]:
        """Hold ``key`` exclusively while sending, with a ``flock`` on its lock file.

        The lock file is removed only once the key is complete, so a failed attempt never lets
        two later ones lock different files.
        """
        lock_path = self._path(key, ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise NotificationInProgress(
                    f"notification {key_digest(key)[:16]} is being sent by another attempt"
                ) from None
            yield _FileClaim(self, key, self.entry(key))
            done = self.entry(key)
            if done is not None and done.complete:
                lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def open_ledger(settings: Settings) -> Ledger:
    """The ledger ``settings`` name: PostgreSQL when ``ledger_url`` is set, else the folder
    ``ledger_dir``. Connections open at the first send, so a database that is down delays
    notifications (they are retried) but not the worker's start."""
    if settings.ledger_url:
        from activities.ledger_postgres import PostgresLedger

        return PostgresLedger(
            settings.ledger_url,
            password=settings.ledger_password,
            max_sends=settings.ledger_max_sends,
        )
    return SentLedger(settings.ledger_dir)


def describe_ledger(settings: Settings) -> str:
    """Where ``settings`` put the ledger, for the worker's start line (never a password)."""
    if settings.ledger_url:
        from activities.ledger_postgres import describe_url

        return describe_url(settings.ledger_url)
    return f"files in {settings.ledger_dir}"
