"""The ``fitnest`` command's answers that need no cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.encryption import TEST_KEY_FILE
from workers.devserver import free_port

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
