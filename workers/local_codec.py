"""Encryption for ``make up``: the local keyring, the codec token and the codec server's wiring.

On first run ``make up`` creates ``.data/keys.json`` (the keyring) and ``.data/codec-token`` (the
codec server's bearer token), both mode 0600 and git-ignored; later runs reuse them, so payloads
sealed before a restart still open. The dev server's Web UI is pointed at the codec server's Web UI
endpoint (see :func:`ui.codec_server.web_ui_path`), and only the Web UI's origin is allowed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ui.codec_server import web_ui_path
from workers.devserver import DevServerSettings

CODEC_READY_TIMEOUT = 20.0


def ensure_token(path: Path) -> str:
    """``FITNEST_CODEC_TOKEN`` if set, else the token kept in ``path`` (made on first run)."""
    given = os.environ.get("FITNEST_CODEC_TOKEN")
    if given:
        return given
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


@dataclass(frozen=True)
class CodecWiring:
    """Where the local codec server listens and how the Web UI and the CLI reach it."""

    port: int
    token: str
    server: DevServerSettings
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        """The codec endpoint for the ``temporal`` CLI (``--codec-endpoint``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def web_ui_endpoint(self) -> str:
        """The endpoint the dev server gives its Web UI (``--ui-codec-endpoint``)."""
        return self.base_url + web_ui_path(self.token)

    @property
    def allowed_origins(self) -> str:
        """The Web UI's origin under both names a browser may use for this machine."""
        origin = self.server.ui_origin
        return ",".join(dict.fromkeys([origin, origin.replace("localhost", "127.0.0.1")]))

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The codec server process's environment."""
        return {
            **base,
            "FITNEST_CODEC_TOKEN": self.token,
            "FITNEST_CODEC_HOST": self.host,
            "FITNEST_CODEC_PORT": str(self.port),
            "FITNEST_CODEC_ALLOWED_ORIGINS": self.allowed_origins,
            "FITNEST_NAMESPACE": self.server.namespace,
        }


async def wait_until_serving(
    url: str, alive: Callable[[], bool], timeout: float = CODEC_READY_TIMEOUT
) -> bool:
    """Poll ``url`` (``/healthz``) until it answers 200; ``False`` if the process died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            status = await asyncio.to_thread(_get_status, url)
        except (urllib.error.URLError, OSError):
            status = None
        if status == 200:
            return True
        await asyncio.sleep(0.2)
    return False


def _get_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2.0) as response:
        return int(response.status)
