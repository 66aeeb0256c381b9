"""`make up`'s encryption set-up: keyring and token made once, the Web UI pointed at the codec server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.codec_server import web_ui_path
from workers.codec import load_keyring
from workers.devserver import DevServerSettings, build_argv
from workers.settings import Settings
from workers.up import CODEC_TOKEN_FILE, prepare_codec


def test_first_run_makes_keyring_and_token_private_and_later_runs_reuse_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FITNEST_CODEC_TOKEN", raising=False)
    mine = Settings(_env_file=None, codec_port=0)  # type: ignore[call-arg]
    server = DevServerSettings(_env_file=None, ui_port=18233)  # type: ignore[call-arg]
    first = prepare_codec(server, mine)
    for secret in (mine.key_file, CODEC_TOKEN_FILE):
        assert oct(secret.stat().st_mode & 0o777) == "0o600", secret
    active = load_keyring(mine.key_file).active

    again = prepare_codec(DevServerSettings(_env_file=None, ui_port=18233), mine)  # type: ignore[call-arg]
    assert again.token == first.token
    assert load_keyring(mine.key_file).active == active

    assert server.ui_codec_endpoint == first.web_ui_endpoint
    assert server.ui_codec_endpoint.endswith(web_ui_path(first.token))
    assert first.token not in server.ui_codec_endpoint  # the token never goes into a URL
    assert first.allowed_origins == "http://localhost:18233,http://127.0.0.1:18233"
    argv = build_argv("temporal", server)
    assert argv[argv.index("--ui-codec-endpoint") + 1] == first.web_ui_endpoint


def test_a_headless_server_gets_no_codec_endpoint():
    settings = DevServerSettings(_env_file=None, headless=True, ui_codec_endpoint="http://x")  # type: ignore[call-arg]
    assert "--ui-codec-endpoint" not in build_argv("temporal", settings)
