"""Local accounts for demos and small teams: Argon2id, and scrypt hashes from before still sign in
once, then become Argon2id in the directory file (its comments kept)."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.ui.conftest import PASSWORD, UiServer, csrf_of, serving, settings_in, sign_in
from ui.app import create_app
from ui.directory import load_directory, needs_rehash, verify_secret

pytestmark = pytest.mark.integration


def scrypt_hash(secret: str) -> str:
    """A hash as `fitnest ui hash-secret` wrote them before Argon2id (N=2^14)."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    b64 = base64.b64encode
    return f"scrypt$16384$8$1${b64(salt).decode()}${b64(digest).decode()}"


def test_scrypt_hashes_still_verify_and_ask_to_be_rehashed():
    old = scrypt_hash("pw")
    assert verify_secret("pw", old) and not verify_secret("pW", old)
    assert needs_rehash(old)


def _directory(path: Path, password_hash: str) -> Path:
    entry = {
        "user": "old",
        "participant": "ana",
        "role": "deal_owner",
        "password_hash": password_hash,
    }
    path.write_text(
        "# kept: a comment the rehash must not lose\n" + yaml.safe_dump({"approvers": [entry]})
    )
    return path


async def test_an_old_scrypt_password_signs_in_and_is_rehashed_with_argon2id(
    ui_server: UiServer, tmp_path: Path
):
    old = scrypt_hash(PASSWORD)
    directory = _directory(tmp_path / "approvers.yaml", old)
    settings = settings_in(ui_server, tmp_path, ui_directory=directory)
    app = create_app(settings, load_directory(directory), ui_server.env.client)
    async with serving(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            assert (await sign_in(http, "old")).status_code == 303
        text = directory.read_text()
        assert text.startswith("# kept: a comment") and old not in text
        rehashed = load_directory(directory).approvers[0].password_hash
        assert rehashed is not None and rehashed.startswith("$argon2id$")
        assert not needs_rehash(rehashed)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            assert (await sign_in(http, "old")).status_code == 303  # the new hash signs in
            assert (await sign_in(http, "old", "wrong")).status_code == 401


async def test_a_session_sits_idle_too_long_and_ends(ui_server: UiServer, tmp_path: Path):
    now = [time.time()]
    directory = _directory(tmp_path / "approvers.yaml", scrypt_hash(PASSWORD))
    settings = settings_in(
        ui_server, tmp_path, ui_directory=directory, ui_session_idle_seconds=600.0
    )
    app = create_app(
        settings, load_directory(directory), ui_server.env.client, wall_clock=lambda: now[0]
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        assert (await sign_in(http, "old")).status_code == 303
        now[0] += 599
        page = await http.get("/docs")
        assert 'data-testid="who"' in page.text  # still signed in, and now used again
        now[0] += 599
        assert 'data-testid="who"' in (await http.get("/docs")).text
        now[0] += 601
        assert 'data-testid="who"' not in (await http.get("/docs")).text
        assert csrf_of((await http.get("/login")).text)
