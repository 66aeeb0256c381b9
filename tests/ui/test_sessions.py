"""Sessions end on the server: a cookie copied before sign-out never signs in again, even after the
UI restarts.

Each test serves apps of its own (a real uvicorn on a free port) on one settings folder, one after
the other when it restarts the UI, on the shared dev server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.ui.conftest import (
    UiServer,
    csrf_of,
    serving,
    settings_in,
    sign_in,
    signed_in_as,
    write_directory,
)
from ui.app import create_app
from ui.directory import load_directory

pytestmark = pytest.mark.integration

COOKIE = "fitnest_session"


def _app(ui_server: UiServer, folder: Path):  # type: ignore[no-untyped-def]
    directory = load_directory(write_directory(folder / "approvers.yaml"))
    return create_app(settings_in(ui_server, folder), directory, ui_server.env.client)


def _replaying(url: str, cookie: str) -> httpx.AsyncClient:
    """A client that knows nothing but the copied cookie."""
    return httpx.AsyncClient(base_url=url, timeout=60, cookies={COOKIE: cookie})


async def _sign_out(http: httpx.AsyncClient) -> None:
    token = csrf_of((await http.get("/")).text)
    reply = await http.post("/logout", data={"csrf": token})
    assert reply.status_code == 303 and reply.headers["location"] == "/login"


async def test_a_cookie_replayed_after_sign_out_is_not_signed_in(
    ui_server: UiServer, tmp_path: Path
):
    async with serving(_app(ui_server, tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as ana:
            assert (await sign_in(ana, "ana")).status_code == 303
            copied = ana.cookies[COOKIE]
            async with _replaying(url, copied) as thief:
                assert await signed_in_as(thief) == "ana"  # the copy works while signed in
            await _sign_out(ana)
            assert await signed_in_as(ana) is None
        async with _replaying(url, copied) as thief:
            assert await signed_in_as(thief) is None
            token = csrf_of((await thief.get("/login")).text)
            # Nor does the copied cookie carry a form: its session, and its token, are gone.
            logout = await thief.post("/logout", data={"csrf": token})
            assert logout.status_code == 303


async def test_a_session_outlives_a_restart_of_the_ui_and_its_sign_out_too(
    ui_server: UiServer, tmp_path: Path
):
    async with (
        serving(_app(ui_server, tmp_path)) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as ana,
    ):
        assert (await sign_in(ana, "ana")).status_code == 303
        copied = ana.cookies[COOKIE]
    async with serving(_app(ui_server, tmp_path)) as url, _replaying(url, copied) as ana:
        assert await signed_in_as(ana) == "ana"  # a restart signs nobody out
        await _sign_out(ana)
    async with serving(_app(ui_server, tmp_path)) as url, _replaying(url, copied) as thief:
        assert await signed_in_as(thief) is None  # nor does it bring an ended session back


async def test_signing_in_again_ends_the_session_it_replaces(ui_server: UiServer, tmp_path: Path):
    async with serving(_app(ui_server, tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            assert (await sign_in(http, "ana")).status_code == 303
            as_ana = http.cookies[COOKIE]
            assert (await sign_in(http, "fay")).status_code == 303
            assert await signed_in_as(http) == "fay"
        async with _replaying(url, as_ana) as thief:
            assert await signed_in_as(thief) is None
