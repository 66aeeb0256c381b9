"""CI runs the tests through make, the same way a developer does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ci_script_is_strict_bash_and_runs_make_test():
    script = ROOT / ".ci" / "run"
    text = script.read_text()
    assert os.access(script, os.X_OK)
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    commands = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert "make test" in commands


def test_makefile_test_target_runs_pytest_from_the_venv():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE)
    assert phony is not None
    assert {"up", "test", "worker", "lint", "bench", "clean"} <= set(phony.group(1).split())
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    commands = recipe.group(1).replace("$(BIN)", "$(VENV)/bin")
    assert "$(VENV)/bin/python -m pytest $(PYTEST_ARGS)" in commands


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_dry_run_passes_pytest_args_through():
    # Under `make test` the parent make's MAKEFLAGS/MAKELEVEL would leak in; start clean.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    argv = ["make", "--no-print-directory", "-n", "test", "PYTEST_ARGS=-k probe"]
    dry = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert dry.stdout.strip().splitlines()[-1] == ".venv/bin/python -m pytest -k probe"


def test_ci_preamble_survives_pipefail_repeatedly(tmp_path):
    """Everything before `make test` must exit 0 every time, not most times.

    `make --version | head -n 1` under `set -o pipefail` failed CI once with exit 141: head
    exits after one line and make, still writing, dies of SIGPIPE, about one run in fifteen
    here. Running the preamble many times catches a pipe that can break that way.
    """
    text = (ROOT / ".ci" / "run").read_text()
    preamble = text.split('echo "== tests"')[0]
    copy = tmp_path / ".ci" / "run"
    copy.parent.mkdir()
    copy.write_text(preamble + "\nexit 0\n")
    failures = []
    for _ in range(40):
        run = subprocess.run(["bash", str(copy)], cwd=tmp_path, capture_output=True, text=True)
        if run.returncode != 0:
            failures.append(run.returncode)
    assert failures == []
