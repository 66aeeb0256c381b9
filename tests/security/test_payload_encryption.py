"""Every payload is sealed with the active key; rotated-out keys still open; strangers fail clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from tests.encryption import DATA_CONVERTER, TEST_KEY_FILE
from workers.client import data_converter_for
from workers.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    KeyringError,
    UnknownKeyError,
    add_active_key,
    load_keyring,
)

TERMS = {"total_contract_value": "48213.77", "clause": "canary-most-favoured-nation"}


async def test_a_payload_is_sealed_names_its_key_and_opens_again():
    [sealed] = await DATA_CONVERTER.encode([TERMS])
    assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == load_keyring(TEST_KEY_FILE).active.encode()
    assert b"48213.77" not in sealed.SerializeToString()
    assert b"canary" not in sealed.SerializeToString()
    assert await DATA_CONVERTER.decode([sealed], [dict]) == [TERMS]


async def test_sealing_the_same_value_twice_gives_different_ciphertexts():
    first, second = await DATA_CONVERTER.encode([TERMS, TERMS])
    assert first.data != second.data


async def test_a_plain_payload_from_before_encryption_passes_through():
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(TERMS).encode())
    assert await DATA_CONVERTER.decode([plain], [dict]) == [TERMS]


async def test_after_rotation_new_payloads_use_the_new_key_and_old_ones_still_open(tmp_path):
    key_file = tmp_path / "keys.json"
    before = data_converter_for(key_file)
    [old] = await before.encode([TERMS])
    new_id = add_active_key(key_file, create=False)
    after = data_converter_for(key_file)
    [new] = await after.encode([TERMS])
    assert new.metadata[KEY_ID_METADATA] == new_id.encode()
    assert old.metadata[KEY_ID_METADATA] != new_id.encode()
    assert await after.decode([old, new], [dict, dict]) == [TERMS, TERMS]
    assert len(load_keyring(key_file).keys) == 2


async def test_a_payload_sealed_with_a_key_not_in_the_ring_fails_naming_the_key(tmp_path):
    [foreign] = await data_converter_for(tmp_path / "other.json").encode([TERMS])
    key_id = foreign.metadata[KEY_ID_METADATA].decode()
    with pytest.raises(UnknownKeyError, match=key_id):
        await DATA_CONVERTER.decode([foreign], [dict])


async def test_an_altered_payload_is_refused():
    [sealed] = await DATA_CONVERTER.encode([TERMS])
    sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(KeyringError, match="altered"):
        await DATA_CONVERTER.decode([sealed], [dict])


async def test_failure_messages_and_stack_traces_are_sealed_too():
    try:
        raise ApplicationError("counteroffer 48213.77 is below the walk-away", type="Breach")
    except ApplicationError as err:
        failure = Failure()
        await DATA_CONVERTER.encode_failure(err, failure)
    stored = failure.SerializeToString()
    assert b"48213.77" not in stored
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == ENCRYPTED_ENCODING
    back = await DATA_CONVERTER.decode_failure(failure)
    assert "48213.77" in str(back)


def test_a_keyring_is_created_readable_by_its_owner_only(tmp_path):
    key_file = tmp_path / "keys.json"
    add_active_key(key_file, create=True)
    add_active_key(key_file, create=False)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_rotation_without_a_keyring_is_an_error_not_a_new_keyring(tmp_path):
    with pytest.raises(KeyringError, match="no encryption keyring"):
        add_active_key(tmp_path / "missing.json", create=False)
    assert not (tmp_path / "missing.json").exists()


def test_a_worker_without_keys_refuses_to_start(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITNEST_")}
    env.update(FITNEST_KEY_FILE=str(tmp_path / "none.json"), FITNEST_OUTBOX_DIR=str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "workers.worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run
    assert "no encryption keyring" in run.stderr
    assert "fitnest keys init" in run.stderr


def test_the_generated_keyring_is_ignored_by_git():
    root = Path(__file__).resolve().parents[2]
    for generated in (".data/keys.json", ".data/codec-token"):
        ignored = subprocess.run(["git", "check-ignore", "-q", generated], cwd=root)
        assert ignored.returncode == 0, generated
