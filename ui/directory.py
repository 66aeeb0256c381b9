"""The directory of approvers and backend systems: who may sign in, as whom, with what authority.

A YAML file (``FITNEST_UI_DIRECTORY``) holds, per user, the participant name they decide under in
negotiations, their role and authority limit, and a salted scrypt hash of their password; and per
backend system an API key id with the hash of its secret. Nothing in it is a secret in clear:
``fitnest ui hash-secret`` turns a password or key secret into the hash to paste in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from negotiation.models import Identifier, Role

#: scrypt cost: about 50 ms per hash here, so guessing is slow and signing in is not.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class DirectoryError(ValueError):
    """The directory file is missing or invalid; the message names the file and the field."""


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``secret``, as ``scrypt$n$r$p$salt$hash`` (base64)."""
    if not secret:
        raise ValueError("an empty secret cannot be hashed")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_secret(secret: str, hashed: str) -> bool:
    """True when ``secret`` matches ``hashed`` (compared in constant time)."""
    try:
        scheme, n, r, p, salt, digest = hashed.split("$")
        if scheme != "scrypt":
            return False
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
    password_hash: str = Field(description="From `fitnest ui hash-secret`; never the password.")
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
        """The approver when the password matches; None otherwise (an unknown user costs a hash too)."""
        found = self.approver(user)
        ok = verify_secret(password, found.password_hash if found else _DUMMY_HASH)
        return found if ok and found is not None else None

    def api_key(self, token: str) -> ApiKey | None:
        """The API key a bearer token ``<key_id>.<secret>`` proves, if any."""
        key_id, _, secret = token.partition(".")
        key = next((k for k in self.api_keys if k.key_id == key_id), None)
        ok = verify_secret(secret, key.secret_hash if key else _DUMMY_HASH)
        return key if ok and key is not None and secret else None


#: Hashed once so that unknown names take as long to refuse as wrong passwords.
_DUMMY_HASH = hash_secret("fitnest-no-such-user", salt=b"\x00" * 16)


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
    return directory
