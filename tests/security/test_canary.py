"""A canary term goes through a whole negotiation: the server's SQLite file never holds it in clear,
while the codec path (the Web UI's POST /decode, the ``temporal`` CLI) shows it to operators."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from tests.conftest import server_binary
from tests.security.canary import payloads_in, play_with_canary
from tests.security.conftest import TOKEN, UI_ORIGIN, CodecServer, http
from workers.devserver import DevServer, DevServerSettings, free_port, start


@pytest.fixture(scope="module")
async def sqlite_server(tmp_path_factory: pytest.TempPathFactory):
    """A dev server of its own, its state in a SQLite file, as `make up` runs it."""
    settings = DevServerSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("sqlite-server"),
        port=free_port(),
        headless=True,
    )
    server = await start(settings, binary=Path(server_binary("temporal")))
    yield server
    server.stop()


async def test_a_canary_term_is_nowhere_in_the_sqlite_file_but_the_codec_path_decodes_it(
    sqlite_server: DevServer,
    codec_server: CodecServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
):
    canary = f"canary{uuid.uuid4().hex}"
    negotiation_id = await play_with_canary(sqlite_server, tmp_path, canary)

    # What the Web UI does: fetch the history (no codec) and POST its payloads to /decode.
    history = await sqlite_server.client.get_workflow_handle(negotiation_id).fetch_history()
    stored = [p for event in history.events for p in payloads_in(event)]
    assert stored and all(p.metadata["encoding"] == b"binary/encrypted" for p in stored)
    assert canary not in history.to_json()
    body = json.loads(json_format.MessageToJson(Payloads(payloads=stored)))
    reply = await http(
        "POST", codec_server.web_ui_url + "/decode", body, Origin=UI_ORIGIN, X_Namespace="default"
    )
    assert reply.status == 200, reply.body
    decoded = json_format.ParseDict(reply.body, Payloads()).payloads
    assert any(canary.encode() in p.data for p in decoded)

    # The state on disk, read after the server has written it out and stopped.
    sqlite_server.stop()
    files = [f for f in sqlite_server.settings.data_dir.iterdir() if f.is_file()]
    on_disk = {f.name: f.read_bytes() for f in files}
    assert "temporal.sqlite" in on_disk
    assert any(negotiation_id.encode() in data for data in on_disk.values()), "wrong file read"
    # Workflow ids, search attributes (the visibility tables) and the server's log are in there too.
    leaking = [name for name, data in on_disk.items() if canary.encode() in data]
    assert leaking == [], f"the canary is in {leaking}"
    logged = capfd.readouterr()
    assert "notification.sent" in logged.out + logged.err  # the worker's log was captured
    assert canary not in logged.out + logged.err


async def test_the_temporal_cli_decodes_through_the_codec_server_with_the_token(
    codec_server: CodecServer, tmp_path: Path
):
    server = await start(
        DevServerSettings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=tmp_path / "data",
            port=free_port(),
            headless=True,
        ),
        binary=Path(server_binary("temporal")),
    )
    try:
        canary = f"canary{uuid.uuid4().hex}"
        negotiation_id = await play_with_canary(server, tmp_path, canary)
        show = [server_binary("temporal"), "workflow", "show", "-w", negotiation_id]
        show += ["--address", server.settings.address, "--output", "json"]
        plain = await run(show)
        assert negotiation_id in plain and canary not in payload_text(plain)
        decoded = await run(
            [*show, "--codec-endpoint", codec_server.url, "--codec-auth", f"Bearer {TOKEN}"]
        )
        assert canary in payload_text(decoded)
        refused = await run([*show, "--codec-endpoint", codec_server.url], check=False)
        assert canary not in refused
    finally:
        server.stop()


def payload_text(history_json: str) -> str:
    """The payload bytes of a ``temporal workflow show --output json`` history, as text."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                found.append(base64.b64decode(node["data"]).decode(errors="replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    assert found, "no payloads in the history"
    return "\n".join(found)


async def run(argv: list[str], *, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert not check or proc.returncode == 0, text
    return text
