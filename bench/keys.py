"""The bench's encryption keyring: the production converter, with a throwaway key.

Payloads are sealed as in production, so the bench measures the codec too. Unless
``FITNEST_KEY_FILE`` names a keyring, one is made in a temporary folder; the worker processes
the bench starts are given the same file (:func:`bench_key_file`).
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from temporalio.converter import DataConverter

from workers.client import data_converter_for
from workers.codec import ensure_keyring


def _keyring(variable: str, name: str) -> Path:
    """The keyring named by ``variable`` if set, else one made in a temporary folder."""
    given = os.environ.get(variable)
    if given:
        return Path(given)
    key_file = Path(tempfile.mkdtemp(prefix="fitnest-bench-keys-")) / name
    ensure_keyring(key_file)
    return key_file


@functools.cache
def bench_key_file() -> Path:
    """``FITNEST_KEY_FILE`` if set, else a keyring made once per bench process."""
    return _keyring("FITNEST_KEY_FILE", "keys.json")


@functools.cache
def bench_seal_key_file() -> Path:
    """``FITNEST_SEAL_KEY_FILE`` if set, else a seal keyring made once per bench process."""
    return _keyring("FITNEST_SEAL_KEY_FILE", "seal-keys.json")


@functools.cache
def bench_converter() -> DataConverter:
    """The data converter of every bench client; its workers get :func:`bench_key_file`."""
    return data_converter_for(bench_key_file())
