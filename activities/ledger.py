"""The sent ledger: which notifications went out, durably, so none is ever sent twice.

One small JSON marker per idempotency key, named by the key's hash and replaced atomically after
each channel delivers. A retried activity or a restarted worker reads it before sending. A
per-key lock file (``flock``) keeps two concurrent attempts for the same key, in this process or
another one sharing the directory, from both sending.

What it cannot do: if a worker dies after the mail server accepted a message and before the
marker is written, the retry sends again. That window is milliseconds; the deterministic
Message-ID (see :mod:`activities.channels`) lets receiving systems drop the copy.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.durable import key_digest, write_atomically
from activities.errors import LedgerUnreadable, NotificationInProgress


class LedgerEntry(BaseModel):
    """What the ledger knows about one idempotency key."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    idempotency_key: str = Field(description="The key, in clear: it names no deal terms.")
    channels: tuple[str, ...] = Field(default=(), description="Channels that have delivered it.")
    complete: bool = Field(default=False, description="Every configured channel delivered it.")
    updated_at: datetime = Field(description="When this entry was last written (UTC).")


class SentLedger:
    """A directory of markers, one per delivered (or partly delivered) notification."""

    def __init__(self, directory: Path) -> None:
        """Use ``directory``, creating it now so a bad path fails at worker start, not at send."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str, suffix: str) -> Path:
        return self.directory / f"{key_digest(key)}{suffix}"

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

    @contextmanager
    def claim(self, key: str) -> Iterator[LedgerEntry | None]:
        """Hold ``key`` exclusively while sending; yields its entry as it stands.

        Raises :class:`NotificationInProgress` at once (no waiting inside an activity) when
        another attempt holds it. The lock file is removed only once the key is complete, so a
        failed attempt never lets two later ones lock different files.
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
            yield self.entry(key)
            done = self.entry(key)
            if done is not None and done.complete:
                lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)
