"""The ``fitnest`` command's answers that need no cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.encryption import TEST_KEY_FILE
from workers.codec import load_seal_keys
from workers.devserver import free_port
from workflows.seal import SealKey, choose_key

ROOT = Path(__file__).parent.parent


def fitnest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starters.cli", *args],
        cwd=ROOT,
        env={**os.environ, "FITNEST_KEY_FILE": str(TEST_KEY_FILE), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unreachable_cluster_is_exit_4_with_a_clear_message():
    done = fitnest("status", "x", FITNEST_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    assert done.returncode == 4, done.stderr
    assert "cannot reach Temporal" in done.stderr and "Traceback" not in done.stderr


def test_an_invalid_request_is_exit_2_and_names_the_fields(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"negotiation_id": "Bad Id", "deal_type": "barter"}')
    done = fitnest("start", str(bad), FITNEST_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert "negotiation_id" in done.stderr and "deal_type" in done.stderr


def test_a_seal_key_rotation_seals_only_negotiations_started_after_its_lead_time(tmp_path: Path):
    ring = tmp_path / "seal-keys.json"
    made = fitnest("keys", "init", "--seal", FITNEST_SEAL_KEY_FILE=str(ring))
    assert made.returncode == 0 and ring.stat().st_mode & 0o777 == 0o600, made.stderr
    rotated = fitnest("keys", "rotate", "--seal", FITNEST_SEAL_KEY_FILE=str(ring))
    assert rotated.returncode == 0 and "Give the seal keyring to every worker" in rotated.stdout
    first, second = load_seal_keys(ring)
    assert second.created - first.created > timedelta(hours=23)
    ring_keys = [SealKey("zz-old", b"k" * 32, datetime(2000, 1, 1, tzinfo=UTC)), first, second]
    assert choose_key(datetime.now(UTC), ring_keys) == first.key_id  # the new one is not yet due
    assert choose_key(second.created, ring_keys) == second.key_id
    assert choose_key(datetime(1999, 1, 1, tzinfo=UTC), ring_keys) == "zz-old"
    listed = fitnest("keys", "list", "--seal", FITNEST_SEAL_KEY_FILE=str(ring))
    assert first.key_id in listed.stdout and second.key_id in listed.stdout
    assert ring.read_text().count('"key"') == 2
    assert '"key"' not in listed.stdout
