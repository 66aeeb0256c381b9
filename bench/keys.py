"""The bench's encryption keyring: the production converter, with a throwaway key.

Payloads are sealed as in production, so the bench measures the codec too. Unless
``FITNEST_KEY_FILE`` names a keyring, one is made in a temporary folder and its path is put into
this process's environment, which the worker processes the bench starts inherit.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from temporalio.converter import DataConverter

from workers.client import data_converter
from workers.codec import add_active_key
from workers.settings import Settings


@functools.cache
def bench_converter() -> DataConverter:
    """The data converter of every bench client (and, through the environment, its workers)."""
    if not os.environ.get("FITNEST_KEY_FILE"):
        key_file = Path(tempfile.mkdtemp(prefix="fitnest-bench-keys-")) / "keys.json"
        add_active_key(key_file, create=True)
        os.environ["FITNEST_KEY_FILE"] = str(key_file)
    return data_converter(Settings(_env_file=None))  # type: ignore[call-arg]
