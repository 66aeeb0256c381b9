"""A codec server in this process on a free port, and plain HTTP to talk to it."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from tests.encryption import DATA_CONVERTER
from ui.codec_server import create_app, web_ui_path
from workers.devserver import free_port

TOKEN = "test-codec-token-" + "x" * 16
UI_ORIGIN = "http://localhost:8233"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: Any


def _send(method: str, url: str, body: Any, headers: dict[str, str]) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw, status, got = response.read(), response.status, response.headers
    except urllib.error.HTTPError as err:
        raw, status, got = err.read(), err.code, err.headers
    parsed = json.loads(raw) if raw else None
    return Reply(status, {k.lower(): v for k, v in got.items()}, parsed)


async def http(method: str, url: str, body: Any = None, **headers: str) -> Reply:
    """``method url`` with a JSON body; header names use ``_`` for ``-``."""
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    if body is not None:
        named.setdefault("Content-Type", "application/json")
    return await asyncio.to_thread(_send, method, url, body, named)


@dataclass(frozen=True)
class CodecServer:
    """The running codec server: its base URL (the CLI's endpoint) and the Web UI's endpoint."""

    url: str
    token: str

    @property
    def web_ui_url(self) -> str:
        return self.url + web_ui_path(self.token)


@asynccontextmanager
async def serving_codec(allowed_origins: list[str]) -> AsyncIterator[CodecServer]:
    """The codec server with the test keyring, in this process, on a free port."""
    assert DATA_CONVERTER.payload_codec is not None
    app = create_app(
        DATA_CONVERTER.payload_codec,
        token=TOKEN,
        allowed_origins=allowed_origins,
        namespace="default",
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield CodecServer(f"http://127.0.0.1:{port}", TOKEN)
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def codec_server() -> AsyncIterator[CodecServer]:
    """The codec server, allowing only the local Web UI's origin."""
    async with serving_codec([UI_ORIGIN]) as server:
        yield server
