"""Who is asking: the signed session of an approver, or the API key of a backend system.

Identity, role and authority come from the signed session (the user name) and the directory
(what that user holds), never from a form field. Every form carries the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ui.directory import ApiKey, Approver, Directory
from ui.problems import ProblemError
from workers.settings import Settings

_CSRF = "csrf"
_USER = "user"


class SignInRequired(Exception):
    """No valid session: the page answers 401 with the sign-in form."""


class Forbidden(Exception):
    """Signed in, but not allowed: the page answers 403 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def session_secret(settings: Settings) -> str:
    """The key signing session cookies: from FITNEST_UI_SECRET, or generated once into a file."""
    if settings.ui_secret:
        return settings.ui_secret
    path: Path = settings.ui_secret_file
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Created readable by this user only; O_EXCL so two processes never write two keys.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret)
    return secret


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created with the session."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def check_csrf(request: Request, presented: str | None) -> None:
    """Refuse a form whose CSRF token is not the session's."""
    expected = request.session.get(_CSRF)
    if (
        not isinstance(expected, str)
        or not presented
        or not hmac.compare_digest(expected, presented)
    ):
        raise Forbidden(
            "the form has expired or did not come from this site; reload the page and try again"
        )


def sign_in(request: Request, approver: Approver) -> None:
    """Start a fresh session for ``approver`` (a new CSRF token too)."""
    request.session.clear()
    request.session[_USER] = approver.user
    request.session[_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """End the session."""
    request.session.clear()


def signed_in(request: Request) -> Approver | None:
    """The approver of the session, if it names one the directory still holds."""
    user = request.session.get(_USER)
    directory: Directory = request.app.state.directory
    return directory.approver(user) if isinstance(user, str) else None


def current_approver(request: Request) -> Approver:
    """Dependency of every page: the signed-in approver, or 401."""
    approver = signed_in(request)
    if approver is None:
        raise SignInRequired()
    return approver


_bearer = HTTPBearer(auto_error=False, description="An API key: `<key id>.<secret>`.")


class ApiKeyVerifier:
    """Checks bearer tokens against the directory; remembers tokens already proven (by digest)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._proven: dict[bytes, ApiKey] = {}

    def verify(self, token: str) -> ApiKey | None:
        """The key ``token`` proves, if any (a scrypt check the first time only)."""
        digest = hashlib.sha256(token.encode()).digest()
        known = self._proven.get(digest)
        if known is not None:
            return known
        key = self.directory.api_key(token)
        if key is not None:
            self._proven[digest] = key
        return key


async def api_client(request: Request) -> ApiKey:
    """Dependency of every API operation: the backend system's key, or a 401 problem."""
    credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
    if credentials is None:
        raise ProblemError(
            401, "unauthenticated", "send an API key as 'Authorization: Bearer <key id>.<secret>'"
        )
    verifier: ApiKeyVerifier = request.app.state.api_keys
    key = verifier.verify(credentials.credentials)
    if key is None:
        raise ProblemError(401, "unauthenticated", "the API key is not valid")
    return key
