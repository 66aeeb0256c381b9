"""Files that are either complete or absent, and survive a crash once written."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path


def key_digest(key: str) -> str:
    """The SHA-256 of an idempotency key, in hex: names files and tags log events."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    Writes a temporary file in the same directory, flushes it to disk, renames it over ``path``
    and flushes the directory, so the rename itself survives a power cut.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
