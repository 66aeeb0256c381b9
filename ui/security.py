"""Who is asking: the signed session of an approver, or the API key of a backend system.

Identity, role and authority come from the signed session (the user name, and how they signed in:
a local password or the identity provider's word) and the directory (what that user holds), never
from a form field. The directory is consulted at every request: an entry removed, or no longer
matching the provider's subject, e-mail or group, signs its session out at once. A session is
signed in only while the server holds its id (``ui.sessions``): sign-out ends it, whoever kept a
copy of the cookie. Every form carries the session's CSRF token.
Passwords and API keys are checked through :func:`checked_credentials`: throttled
(``ui.throttle``) and audited (``ui.audit``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ui.audit import AccessOutcome, AuditLog, access_attempt
from ui.directory import ApiKey, Approver, Directory
from ui.problems import ProblemError
from ui.sessions import SessionStore, SignInIdentity
from ui.throttle import SignInThrottle, wait_in_words
from workers.settings import Settings

_CSRF = "csrf"
_USER = "user"
_SESSION_ID = "sid"
#: Where a request keeps the approver its session resolved to (one store lookup a request).
_RESOLVED = "approver"


class SignInRequired(Exception):
    """No valid session: the page answers 401 with the sign-in form."""


class Forbidden(Exception):
    """Signed in, but not allowed: the page answers 403 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Throttled(Exception):
    """Too many failures from this address or for this name: refused before any check."""

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.detail = detail


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


class SignedInApprover(Approver):
    """A directory entry as signed in: with the identity that proved it (for the audit)."""

    signed_in_as: SignInIdentity


class NoEntry(Exception):
    """The provider vouched for someone the directory does not let in; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def match_identity(directory: Directory, identity: SignInIdentity) -> Approver:
    """The directory entry the provider's identity is: by subject, else by verified e-mail;
    and holding its role only while in the entry's group. Raises :class:`NoEntry`."""
    approver = directory.by_subject(identity.subject)
    if approver is None and identity.email:
        approver = directory.by_email(identity.email)
        if approver is not None and not identity.email_verified:
            raise NoEntry(
                f"the identity provider has not verified the e-mail address {identity.email}, "
                "so it cannot stand for a directory entry"
            )
    if approver is None:
        raise NoEntry("the approver directory has no entry for this account")
    if approver.role_group and approver.role_group not in identity.groups:
        raise NoEntry(
            f"the role {approver.role.value} needs membership of the group "
            f"{approver.role_group} at the identity provider"
        )
    return approver


def _entitled(directory: Directory, user: str, identity: SignInIdentity) -> Approver | None:
    """The entry ``user`` of a live session, while the directory still lets its identity in."""
    approver = directory.approver(user)
    if approver is None:
        return None
    if identity.method == "local":
        return approver if approver.password_hash else None
    try:
        matched = match_identity(directory, identity)
    except NoEntry:
        return None
    return approver if matched.user == user else None


def sign_in(request: Request, approver: Approver, identity: SignInIdentity | None = None) -> None:
    """Start a fresh session for ``approver`` (a new id and CSRF token); the one it replaces ends."""
    sign_out(request)
    found = identity or SignInIdentity(subject=approver.user)
    sessions: SessionStore = request.app.state.sessions
    request.session[_SESSION_ID] = sessions.start(approver.user, found)
    request.session[_USER] = approver.user
    request.session[_CSRF] = secrets.token_urlsafe(32)
    resolved = SignedInApprover(**approver.model_dump(), signed_in_as=found)
    setattr(request.state, _RESOLVED, resolved)


def sign_out(request: Request) -> SignInIdentity | None:
    """End the session, on the server too: a copy of its cookie signs in no more. Returns how
    the session had signed in (to end the provider's session too), when it was live."""
    session_id = request.session.get(_SESSION_ID)
    ended = None
    if isinstance(session_id, str):
        sessions: SessionStore = request.app.state.sessions
        live = sessions.session(session_id)
        ended = live.identity if live else None
        sessions.end(session_id)
    request.session.clear()
    setattr(request.state, _RESOLVED, None)
    return ended


def signed_in(request: Request) -> SignedInApprover | None:
    """The approver of the session, while the server holds it and the directory lets them in."""
    if hasattr(request.state, _RESOLVED):
        return getattr(request.state, _RESOLVED)  # type: ignore[no-any-return]
    approver = None
    session_id, user = request.session.get(_SESSION_ID), request.session.get(_USER)
    if isinstance(session_id, str) and isinstance(user, str):
        sessions: SessionStore = request.app.state.sessions
        live = sessions.session(session_id)
        if live is not None and live.user == user:
            directory: Directory = request.app.state.directory
            entry = _entitled(directory, user, live.identity)
            if entry is not None:
                approver = SignedInApprover(**entry.model_dump(), signed_in_as=live.identity)
    if approver is None and _USER in request.session:
        request.session.clear()  # ended, expired or from before server-side sessions: forget it
    setattr(request.state, _RESOLVED, approver)
    return approver


def current_approver(request: Request) -> SignedInApprover:
    """Dependency of every page: the signed-in approver, or 401."""
    approver = signed_in(request)
    if approver is None:
        raise SignInRequired()
    return approver


Found = TypeVar("Found")

#: Per kind of attempt: why a wrong one is refused, and why one is refused unchecked.
_REFUSALS = {
    "sign_in": (
        "wrong user name or password",
        "Too many failed sign-ins for this user name or from this address. "
        "Sign-in is paused: try again in {wait}.",
    ),
    "api_key": (
        "the API key is not valid",
        "too many invalid API keys from this address: try again in {wait}",
    ),
}


def client_address(request: Request) -> str:
    """The address the request came from (behind a proxy: as uvicorn's proxy headers say)."""
    return request.client.host if request.client else "unknown"


async def checked_credentials(
    request: Request,
    kind: Literal["sign_in", "api_key"],
    name: str,
    check: Callable[[], Found | None],
) -> Found | None:
    """``check()`` (a password or key check) unless the throttle says wait (:class:`Throttled`).

    A failure counts for the client address, and a sign-in's for its user name too; a sign-in
    that succeeds clears its name's count. Every attempt checked or refused is audited.
    """
    throttle: SignInThrottle = request.app.state.throttle
    audit: AuditLog = request.app.state.audit
    address = client_address(request)
    user = name if kind == "sign_in" else None
    wrong, paused = _REFUSALS[kind]
    # One check at a time, each in a thread: Argon2id (about 50-100 ms) no longer stalls every
    # other request, and attempts sent at once cannot all slip past the throttle before one is
    # counted.
    one_at_a_time: asyncio.Lock = request.app.state.credential_checks
    async with one_at_a_time:
        wait = throttle.retry_after(address, user)
        if wait:
            detail = paused.format(wait=wait_in_words(wait))
            await audit.append(access_attempt(kind, name, address, AccessOutcome.THROTTLED, detail))
            raise Throttled(wait, detail)
        found = await asyncio.to_thread(check)
        if found is None:
            throttle.failed(address, user)
        elif user is not None:
            throttle.succeeded(user)
    if found is None:
        await audit.append(
            access_attempt(kind, name, address, AccessOutcome.WRONG_CREDENTIALS, wrong)
        )
        return None
    await audit.append(access_attempt(kind, name, address, AccessOutcome.ACCEPTED))
    return found


_bearer = HTTPBearer(auto_error=False, description="An API key: `<key id>.<secret>`.")


class ApiKeyVerifier:
    """Checks bearer tokens against the directory; remembers tokens already proven (by digest)."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._proven: dict[bytes, ApiKey] = {}

    def proven(self, token: str) -> ApiKey | None:
        """The key ``token`` proved before in this process, if it did (no hash check)."""
        return self._proven.get(_digest(token))

    def verify(self, token: str) -> ApiKey | None:
        """The key ``token`` proves, if any (a hash check the first time only)."""
        known = self.proven(token)
        if known is not None:
            return known
        key = self.directory.api_key(token)
        if key is not None:
            self._proven[_digest(token)] = key
        return key


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def api_client(request: Request) -> ApiKey:
    """Dependency of every API operation: the backend system's key, or a 401 problem."""
    credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
    if credentials is None:
        raise ProblemError(
            401, "unauthenticated", "send an API key as 'Authorization: Bearer <key id>.<secret>'"
        )
    token = credentials.credentials
    verifier: ApiKeyVerifier = request.app.state.api_keys
    # A key proven before is no guess: it passes even from an address the throttle refuses.
    key = verifier.proven(token)
    if key is not None:
        return key
    try:
        key = await checked_credentials(
            request, "api_key", token.partition(".")[0], lambda: verifier.verify(token)
        )
    except Throttled as err:
        raise ProblemError(
            429, "throttled", err.detail, headers={"Retry-After": str(err.retry_after)}
        ) from err
    if key is None:
        raise ProblemError(401, "unauthenticated", "the API key is not valid")
    return key
