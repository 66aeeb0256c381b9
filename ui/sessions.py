"""The sessions that are signed in, kept on the server: signing out ends one for good.

The session cookie is signed, so nobody can forge one; but a signed cookie alone stays valid for
its whole lifetime, so a copy taken before sign-out would still sign in. Each sign-in therefore
gets a random session id, kept in the cookie and, as a SHA-256 digest, in a small SQLite file
beside the audit log; a request is signed in only while its id is in the file, its lifetime has
not run out and it was used within the idle timeout. Sign-out deletes it. The file survives a
restart of the UI, so neither a restart signs anyone out nor brings an ended session back.

Beside the user, a session keeps how they signed in (:class:`SignInIdentity`): locally, or the
identity the provider vouched for (issuer, subject, e-mail, groups, and the ID token to end the
provider's session with). It stays on the server, never in the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    expires REAL NOT NULL
)
"""
#: Columns added since the first schema: (name, declaration).
_ADDED = (("last_seen", "REAL"), ("identity", "TEXT NOT NULL DEFAULT ''"))


class SignInIdentity(BaseModel):
    """Who signed in, as the UI checked it: a local password, or the provider's word."""

    model_config = ConfigDict(frozen=True)

    method: Literal["local", "oidc"] = "local"
    issuer: str = ""
    subject: str = ""
    email: str = ""
    email_verified: bool = False
    groups: tuple[str, ...] = ()
    id_token: str = ""

    @property
    def label(self) -> str:
        """How the audit names this identity: ``local:ana`` or ``oidc:<email or sub> (sub ...)``."""
        if self.method == "local":
            return f"local:{self.subject}"
        return f"oidc:{self.email or self.subject} (sub {self.subject} at {self.issuer})"


class Session(BaseModel):
    """A live session: its user and how they signed in."""

    user: str
    identity: SignInIdentity


class SessionStore:
    """Live sessions by the digest of their id: user, identity, expiry and last use."""

    def __init__(
        self,
        path: Path,
        lifetime: float,
        idle: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lifetime = lifetime
        self.idle = idle if idle is not None else lifetime
        # Last use is written at most this often: a page load is a read, not a write, mostly.
        self._touch_every = min(30.0, self.idle / 10)
        self._clock = clock
        # One connection, used under a lock: lookups are primary-key reads of a small table.
        self._db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
            for name, declaration in _ADDED:
                if name not in have:
                    self._db.execute(f"ALTER TABLE sessions ADD COLUMN {name} {declaration}")
            # Sessions from before the idle timeout count as used now.
            self._db.execute(
                "UPDATE sessions SET last_seen = ? WHERE last_seen IS NULL", (self._clock(),)
            )
        path.chmod(0o600)

    def start(self, user: str, identity: SignInIdentity | None = None) -> str:
        """A new session for ``user``: its id, to keep in the signed cookie."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        found = identity or SignInIdentity(subject=user)
        with self._lock:
            self._db.execute(
                "DELETE FROM sessions WHERE expires <= ? OR last_seen <= ?", (now, now - self.idle)
            )
            self._db.execute(
                "INSERT INTO sessions (digest, user, expires, last_seen, identity) "
                "VALUES (?, ?, ?, ?, ?)",
                (_digest(session_id), user, now + self.lifetime, now, found.model_dump_json()),
            )
        return session_id

    def session(self, session_id: str) -> Session | None:
        """The live session with this id, marked as used now; None when it ended, expired, sat
        idle too long or never was."""
        now = self._clock()
        digest = _digest(session_id)
        with self._lock:
            row = self._db.execute(
                "SELECT user, identity, last_seen FROM sessions "
                "WHERE digest = ? AND expires > ? AND last_seen > ?",
                (digest, now, now - self.idle),
            ).fetchone()
            if row is None:
                return None
            if now - row[2] >= self._touch_every:
                self._db.execute(
                    "UPDATE sessions SET last_seen = ? WHERE digest = ?", (now, digest)
                )
        try:
            identity = SignInIdentity.model_validate_json(row[1] or "{}")
        except ValidationError:
            return None
        return Session(user=row[0], identity=identity)

    def user_of(self, session_id: str) -> str | None:
        """The user of a live session; None when it ended, expired or never was."""
        found = self.session(session_id)
        return found.user if found else None

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
