"""The test suite's keyring: committed, test-only keys, so that recorded histories replay in CI."""

from __future__ import annotations

import os
from pathlib import Path

from workers.client import data_converter
from workers.codec import load_seal_keys
from workers.settings import Settings
from workflows import seal

#: Test keys only (see its ``_comment``); a real keyring is generated and never committed.
TEST_KEY_FILE = Path(__file__).parent / "test-keyring.json"

#: Settings that name nothing but the test keyring (no .env file, no environment steering).
TEST_SETTINGS = Settings(_env_file=None, key_file=TEST_KEY_FILE)  # type: ignore[call-arg]

#: The production converter (pydantic + AES-GCM codec + encoded failure attributes), test keys.
DATA_CONVERTER = data_converter(TEST_SETTINGS)


def worker_settings(workdir: Path, **more: object) -> Settings:
    """Settings of a test worker: the test keyring, notifications and ledger under ``workdir``."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        key_file=TEST_KEY_FILE,
        outbox_dir=workdir / "outbox",
        ledger_dir=workdir / "ledger",
        **more,  # type: ignore[arg-type]
    )


#: Test seal keys only: the workers' key for the messages between a negotiation and its movements.
TEST_SEAL_KEY_FILE = Path(__file__).parent / "test-seal-keys.json"
# Installed for the whole test process (every worker and replayer of the suite seals with it),
# and named in the environment, which the worker processes the tests start inherit.
seal.install(load_seal_keys(TEST_SEAL_KEY_FILE))
os.environ["FITNEST_SEAL_KEY_FILE"] = str(TEST_SEAL_KEY_FILE)
