"""The directory of approvers and backend systems: who may sign in, as whom, with what authority.

A YAML file (``FITNEST_UI_DIRECTORY``) holds, per approver, the participant name they decide under
in negotiations, their role and authority limit, and how they sign in: through the company's
identity provider (matched by the provider's ``subject`` or by a verified ``email``), with a local
password (its Argon2id hash), or both; and per backend system an API key id with the hash of its
secret. Nothing in it is a secret in clear: ``fitnest ui hash-secret`` turns a password or key
secret into the hash to paste in. Hashes from before Argon2id (scrypt) still verify; a local
password is rehashed into the file at its next successful sign-in (``DirectoryFile``).

The file is read again when it changes (``DirectoryFile.current``): someone removed from it loses
access at their next request.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import tempfile
import threading
from decimal import Decimal
from pathlib import Path

import structlog
import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from negotiation.models import Identifier, Role

log = structlog.get_logger("fitnest.ui.directory")

#: Argon2id with argon2-cffi's defaults (RFC 9106's second recommendation: t=3, 64 MiB, p=4),
#: above OWASP's minimum for Argon2id; about 50-100 ms a hash here.
_ARGON2 = PasswordHasher()


class DirectoryError(ValueError):
    """The directory file is missing or invalid; the message names the file and the field."""


def hash_secret(secret: str) -> str:
    """An Argon2id hash of ``secret`` (PHC string ``$argon2id$v=19$m=...``), salted at random."""
    if not secret:
        raise ValueError("an empty secret cannot be hashed")
    return _ARGON2.hash(secret)


def verify_secret(secret: str, hashed: str) -> bool:
    """True when ``secret`` matches ``hashed``: Argon2id, or a scrypt hash from before."""
    if hashed.startswith("scrypt$"):
        return _verify_scrypt(secret, hashed)
    try:
        return _ARGON2.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """True for a hash weaker than :func:`hash_secret` makes now (scrypt, or older parameters)."""
    if hashed.startswith("scrypt$"):
        return True
    try:
        return _ARGON2.check_needs_rehash(hashed)
    except InvalidHashError:
        return False


def _verify_scrypt(secret: str, hashed: str) -> bool:
    """The scheme before Argon2id: ``scrypt$n$r$p$salt$hash`` (base64), in constant time."""
    try:
        _scheme, n, r, p, salt, digest = hashed.split("$")
        found = hashlib.scrypt(
            secret.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(digest)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, base64.b64decode(digest))


class Approver(BaseModel):
    """A person who signs in to the UI and decides as a participant of negotiations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: Identifier = Field(description="Sign-in name.")
    participant: Identifier = Field(description="Participant name on the negotiations' role cards.")
    display_name: str = Field(default="", max_length=120, description="Shown in the page header.")
    role: Role = Field(description="The role this person holds.")
    authority_limit: Decimal = Field(
        default=Decimal(0), ge=0, description="Largest value they approve."
    )
    password_hash: str | None = Field(
        default=None,
        description="From `fitnest ui hash-secret`; never the password. None: no local sign-in.",
    )
    subject: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The identity provider's `sub` for this person (stable, never reassigned).",
    )
    email: str | None = Field(
        default=None,
        min_length=3,
        max_length=254,
        description="Matched against the provider's e-mail claim, only when it says verified.",
    )
    role_group: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="When set, the role holds only while the provider's groups claim names this "
        "group: leaving the group at the provider takes the role away at the next sign-in.",
    )
    stands_in_for: tuple[Identifier, ...] = Field(
        default=(),
        description="Users whose decisions this person may take as their delegate: their roles "
        "join this inbox; the negotiation's role cards say whether a delegation is in force.",
    )

    @property
    def shown_name(self) -> str:
        """The name the pages greet this person with."""
        return self.display_name or self.participant


class ApiKey(BaseModel):
    """A backend system's key: callers send ``<key_id>.<secret>`` as a bearer token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: Identifier = Field(description="Public part of the key, names the system in logs.")
    system: str = Field(default="", max_length=120, description="Which backend holds it.")
    secret_hash: str = Field(description="Hash of the secret part, from `fitnest ui hash-secret`.")


class Directory(BaseModel):
    """Every approver and API key the UI knows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approvers: tuple[Approver, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()

    def approver(self, user: str) -> Approver | None:
        """The approver signing in as ``user``, if any."""
        return next((a for a in self.approvers if a.user == user), None)

    def inbox_roles(self, approver: Approver) -> list[str]:
        """The roles whose pending decisions this approver's inbox looks at."""
        roles = {approver.role.value}
        for user in approver.stands_in_for:
            other = self.approver(user)
            if other is not None:
                roles.add(other.role.value)
        return sorted(roles)

    def authenticate(self, user: str, password: str) -> Approver | None:
        """The approver when the password matches; None otherwise (an unknown user, or one with no
        local password, costs a hash too)."""
        found = self.approver(user)
        hashed = found.password_hash if found and found.password_hash else _dummy_hash()
        ok = verify_secret(password, hashed)
        return found if ok and found is not None and found.password_hash else None

    def by_subject(self, subject: str) -> Approver | None:
        """The approver the provider's ``sub`` names, if any."""
        return next((a for a in self.approvers if a.subject == subject), None)

    def by_email(self, email: str) -> Approver | None:
        """The approver with this e-mail address (compared without case), if any."""
        wanted = email.casefold()
        return next((a for a in self.approvers if a.email and a.email.casefold() == wanted), None)

    def api_key(self, token: str) -> ApiKey | None:
        """The API key a bearer token ``<key_id>.<secret>`` proves, if any."""
        key_id, _, secret = token.partition(".")
        key = next((k for k in self.api_keys if k.key_id == key_id), None)
        ok = verify_secret(secret, key.secret_hash if key else _dummy_hash())
        return key if ok and key is not None and secret else None


@functools.cache
def _dummy_hash() -> str:
    """Hashed once, at first use, so that unknown names take as long to refuse as wrong passwords."""
    return hash_secret("fitnest-no-such-user")


def load_directory(path: Path) -> Directory:
    """Read and check the directory file; raises DirectoryError naming the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise DirectoryError(f"cannot read the approver directory {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise DirectoryError(f"{path} is not valid YAML: {err}") from err
    try:
        directory = Directory.model_validate(data)
    except ValidationError as err:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]
        )
        raise DirectoryError(f"{path} is not a valid approver directory: {fields}") from err
    users = [a.user for a in directory.approvers]
    keys = [k.key_id for k in directory.api_keys]
    if len(users) != len(set(users)) or len(keys) != len(set(keys)):
        raise DirectoryError(f"{path}: user names and API key ids must be unique")
    subjects = [a.subject for a in directory.approvers if a.subject]
    emails = [a.email.casefold() for a in directory.approvers if a.email]
    if len(subjects) != len(set(subjects)) or len(emails) != len(set(emails)):
        raise DirectoryError(f"{path}: subjects and e-mail addresses must be unique")
    return directory


def _stamp(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return found.st_ino, found.st_mtime_ns, found.st_size


class DirectoryFile:
    """The directory as its file says now: read again whenever the file changes.

    A file changed into something invalid is logged and the last valid directory stays in use,
    so a typo does not lock everyone out; removing someone takes effect at their next request.
    """

    def __init__(self, path: Path, directory: Directory | None = None) -> None:
        self.path = path
        self._stamp = _stamp(path)
        self._directory = directory if directory is not None else load_directory(path)
        self._lock = threading.Lock()

    def current(self) -> Directory:
        """The directory, read again first when its file changed since the last read."""
        try:
            stamp = _stamp(self.path)
        except OSError:
            return self._directory
        if stamp != self._stamp:
            with self._lock:
                try:
                    self._directory = load_directory(self.path)
                    log.info("ui.directory_reloaded", path=str(self.path))
                except DirectoryError as err:
                    log.error("ui.directory_invalid", error=str(err))
                self._stamp = stamp
        return self._directory

    def rehash(self, user: str, old_hash: str, new_hash: str) -> bool:
        """Put ``new_hash`` in place of ``user``'s ``old_hash`` in the file (its comments and
        layout kept); False, and logged, when the file cannot be written or has changed."""
        with self._lock:
            try:
                text = self.path.read_text(encoding="utf-8")
                if text.count(old_hash) != 1:
                    return False
                self._replace_file(text.replace(old_hash, new_hash))
            except OSError as err:
                log.warning("ui.rehash_not_written", user=user, error=str(err))
                return False
        log.info("ui.password_rehashed", user=user, scheme="argon2id")
        return True

    def _replace_file(self, text: str) -> None:
        """Write ``text`` beside the file, then rename it over (never a half-written file)."""
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temporary, self.path.stat().st_mode & 0o777)
            os.replace(temporary, self.path)
        except OSError:
            Path(temporary).unlink(missing_ok=True)
            raise
