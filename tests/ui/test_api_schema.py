"""The JSON API keeps to its OpenAPI document: schemathesis, every check on, against the real app.

Schemathesis (its command, in a process of its own) reads ``/openapi.json`` from the UI served by
uvicorn in this process, on the shared dev server with a real worker, and sends what the document
allows and what it forbids: every phase (examples, coverage, fuzzing, stateful) and every check
(no 5xx, status codes, content types, headers and bodies as documented, invalid data refused,
valid data taken, auth enforced...). The examples per operation and the seed are fixed, so a run
is bounded and the same on every machine.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import API_KEY, UiServer
from tests.ui.test_api import started_with_counter

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 30
SEED = 11
#: A run that takes longer than this has stopped being bounded: fail it rather than wait.
GIVE_UP_AFTER = 240.0


async def test_the_api_answers_only_what_its_openapi_document_says(
    ui_server: UiServer, tmp_path: Path
):
    nid = await started_with_counter(ui_server, "schema")
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'{CONFIG.read_text()}\n[dictionaries.negotiations]\nvalues = ["{nid}"]\n')
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{ui_server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
    ]
    # Its own folder: schemathesis and hypothesis leave their databases and reports in the cwd.
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "SCHEMATHESIS_HOOKS": "",
    }
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), GIVE_UP_AFTER)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    print(text)  # pytest shows it with -s, or when the test fails
    assert process.returncode == 0, text
    assert "No issues found" in text or "passed" in text, text
