"""Payload encryption: every payload leaves this process sealed with AES-GCM.

The Temporal server stores what it is given; with this codec it is given ciphertext only (inputs,
results, signals, updates, queries, memo and, with the failure converter that encodes attributes,
failure messages and stack traces). Each sealed payload names the key that sealed it, so keys can
rotate: the keyring's *active* key seals, every key in the ring opens. A payload without the
encrypted encoding passes through untouched, so histories recorded before encryption still replay.

The keyring is a JSON file (``FITNEST_KEY_FILE``, mode 0600, never committed)::

    {"active": "k-20261128-1a2b", "keys": [{"id": "k-20261128-1a2b", "key": "<base64, 32 bytes>",
                                          "created": "2026-11-28T04:30:00+00:00"}]}
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from workflows.intake import UNREADABLE_ENCODING, UNREADABLE_REASON
from workflows.seal import SealKey

#: ``metadata["encoding"]`` of a sealed payload.
ENCRYPTED_ENCODING = b"binary/encrypted"
#: ``metadata`` key naming the key that sealed the payload.
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32


class KeyringError(Exception):
    """The keyring is missing, unreadable or lacks a key a payload needs; the message says which."""


class UnknownKeyError(KeyringError):
    """A payload was sealed with a key this keyring does not hold."""


@dataclass(frozen=True)
class Keyring:
    """Encryption keys by id; ``active`` seals, all of them open."""

    active: str
    keys: Mapping[str, bytes]
    source: str = "the keyring"

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyringError(f"{self.source}: the active key {self.active!r} is not in the ring")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise KeyringError(
                    f"{self.source}: key {key_id!r} has {len(key)} bytes, AES-256 needs {KEY_BYTES}"
                )

    def key(self, key_id: str) -> bytes:
        """The key called ``key_id``; :class:`UnknownKeyError` when the ring lacks it."""
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKeyError(
                f"payload sealed with key {key_id!r}, which {self.source} does not hold "
                f"(it holds {', '.join(sorted(self.keys))}). Restore the retired key into the "
                "keyring: keys are never removed while histories sealed with them exist."
            ) from None


def new_key_id(now: datetime | None = None) -> str:
    """A fresh key id: the date it was made and a random tag (no secret in it)."""
    return f"k-{(now or datetime.now(UTC)):%Y%m%d}-{secrets.token_hex(4)}"


def _document(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeyringError(
            f"no encryption keyring at {path}: payloads cannot be sealed without one. "
            "`make up` creates it on first run; elsewhere run `fitnest keys init` (or point "
            "FITNEST_KEY_FILE at the deployment's keyring)."
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise KeyringError(f"cannot read the keyring {path}: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyringError(f"{path} is not a keyring: expected {{'active': ..., 'keys': [...]}}")
    return data


def load_keyring(path: Path) -> Keyring:
    """Read the keyring file; :class:`KeyringError` with the reason when it cannot be used."""
    data = _document(path)
    try:
        keys = {
            entry["id"]: base64.b64decode(entry["key"], validate=True) for entry in data["keys"]
        }
    except (KeyError, TypeError, ValueError) as err:
        raise KeyringError(f"{path}: every key needs an 'id' and a base64 'key' ({err})") from err
    return Keyring(active=str(data.get("active")), keys=keys, source=str(path))


def load_seal_keys(path: Path) -> list[SealKey]:
    """The seal keyring at ``path`` (the payload keyring's format; each key's ``created`` time
    says from when it seals new negotiations); :class:`KeyringError` when it cannot be used."""
    data = _document(path)
    try:
        return [
            SealKey(
                key_id=str(entry["id"]),
                key=base64.b64decode(entry["key"], validate=True),
                created=datetime.fromisoformat(entry["created"]),
            )
            for entry in data["keys"]
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise KeyringError(
            f"{path}: every seal key needs an 'id', a base64 'key' and a 'created' time ({err})"
        ) from err


def _write_private(path: Path, data: dict) -> None:
    """Write ``data`` so that only the owner can read it, replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.chmod(tmp, 0o600)  # an existing tmp file keeps its mode through os.open
    os.replace(tmp, path)


def add_active_key(path: Path, *, create: bool, from_time: datetime | None = None) -> str:
    """Add a new random key to the keyring at ``path`` and make it the active one; return its id.

    Older keys stay in the ring so that everything they sealed stays readable. ``create`` allows
    starting a new keyring when the file does not exist (``keys init``); rotation requires one.
    ``from_time`` is the key's ``created`` time (a seal key seals negotiations started from then).
    """
    if path.exists():
        data = _document(path)
    elif create:
        data = {"keys": []}
    else:
        _document(path)  # raises the "no keyring" error
        raise AssertionError("unreachable")
    key_id = new_key_id()
    data["keys"].append(
        {
            "id": key_id,
            "key": base64.b64encode(AESGCM.generate_key(bit_length=256)).decode(),
            "created": (from_time or datetime.now(UTC)).isoformat(timespec="seconds"),
        }
    )
    data["active"] = key_id
    _write_private(path, data)
    return key_id


def ensure_keyring(path: Path) -> str | None:
    """Create the keyring at ``path`` unless one exists; return the new key's id, if any."""
    if path.exists():
        return None
    return add_active_key(path, create=True)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over the whole serialized payload; the key id is also the associated data."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Seal each payload with the active key."""
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open sealed payloads with the key they name; pass plain ones through."""
        return [self.open(p) for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        """One payload, sealed with the active key."""
        key_id = self.keyring.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keyring.key(key_id)).encrypt(
            nonce, payload.SerializeToString(), key_id.encode()
        )
        return Payload(
            metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def open(self, payload: Payload) -> Payload:
        """One payload, opened (or returned as is when it was never sealed)."""
        if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise KeyringError(f"sealed payload without {KEY_ID_METADATA!r} metadata")
        key_id = raw_id.decode()
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = AESGCM(self.keyring.key(key_id)).decrypt(nonce, sealed, raw_id)
        except InvalidTag:
            raise KeyringError(
                f"payload sealed with key {key_id!r} does not open with the key of that id in "
                f"{self.keyring.source}: the key was replaced or the payload was altered"
            ) from None
        return Payload.FromString(plain)


class WorkerCodec(PayloadCodec):
    """The worker's codec: a payload it cannot open is handed on marked *unreadable*, with the
    reason, instead of failing the whole workflow activation.

    A client can send a payload marked encrypted with no key id or a made-up one; raised here, the
    error would fail every workflow task of that workflow for ever (a reset re-applies it). Marked,
    it reaches the workflow's signal intake, which records the message as rejected; as a workflow
    or activity input it still fails only that task, as before, until the key is restored.
    """

    def __init__(self, inner: EncryptionCodec) -> None:
        self.inner = inner

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Seal as the inner codec does."""
        return await self.inner.encode(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open each payload; mark those that cannot be opened."""
        return [self._open(p) for p in payloads]

    def _open(self, payload: Payload) -> Payload:
        try:
            return self.inner.open(payload)
        except Exception as err:  # whatever a made-up payload makes the inner codec raise
            # The reason names key ids and the keyring, never payload content.
            reason = str(err)[:300].encode()
            return Payload(
                metadata={"encoding": UNREADABLE_ENCODING, UNREADABLE_REASON: reason}, data=b""
            )
