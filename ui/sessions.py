"""The sessions that are signed in, kept on the server: signing out ends one for good.

The session cookie is signed, so nobody can forge one; but a signed cookie alone stays valid for
its whole lifetime, so a copy taken before sign-out would still sign in. Each sign-in therefore
gets a random session id, kept in the cookie and, as a SHA-256 digest, in a small SQLite file
beside the audit log; a request is signed in only while its id is in the file and not expired.
Sign-out deletes it. The file survives a restart of the UI, so neither a restart signs anyone out
nor brings an ended session back.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    expires REAL NOT NULL
)
"""


class SessionStore:
    """Live sessions by the digest of their id, each with its user and when it expires."""

    def __init__(self, path: Path, lifetime: float, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lifetime = lifetime
        self._clock = clock
        # One connection, used under a lock: lookups are primary-key reads of a small table.
        self._db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        path.chmod(0o600)

    def start(self, user: str) -> str:
        """A new session for ``user``: its id, to keep in the signed cookie."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            self._db.execute(
                "INSERT INTO sessions (digest, user, expires) VALUES (?, ?, ?)",
                (_digest(session_id), user, now + self.lifetime),
            )
        return session_id

    def user_of(self, session_id: str) -> str | None:
        """The user of a live session; None when it ended, expired or never was."""
        with self._lock:
            row = self._db.execute(
                "SELECT user FROM sessions WHERE digest = ? AND expires > ?",
                (_digest(session_id), self._clock()),
            ).fetchone()
        return row[0] if row else None

    def end(self, session_id: str) -> None:
        """End a session: its cookie, copied or not, signs in no more."""
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE digest = ?", (_digest(session_id),))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
