"""The dev server's own Web UI, in a real browser, shows a negotiation's terms decoded.

Wired as ``make up`` wires it (``workers.local_codec``): the dev server gets
``--ui-codec-endpoint`` pointing at the codec server's Web UI endpoint, and the codec server
allows only the Web UI's origin. Debian's chromium, driven by Playwright, opens the event history.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.conftest import server_binary
from tests.security.canary import play_with_canary
from tests.security.conftest import TOKEN, serving_codec
from ui.codec_server import web_ui_path
from workers.devserver import DevServerSettings, free_port, start

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


async def test_the_web_ui_shows_the_canary_decoded_through_the_codec_server(tmp_path: Path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    settings = DevServerSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        port=free_port(),
        ui_port=free_port(),
    )
    async with serving_codec([settings.ui_origin]) as codec:
        settings.ui_codec_endpoint = codec.url + web_ui_path(TOKEN)
        server = await start(settings, binary=Path(server_binary("temporal")))
        try:
            negotiation_id = await play_with_canary(server, tmp_path, f"canary{uuid.uuid4().hex}")
            run_id = (await server.client.get_workflow_handle(negotiation_id).describe()).run_id
            page_url = f"{settings.ui_origin}/namespaces/default/workflows/{negotiation_id}/{run_id}/history"
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = await browser.new_page()
                decoded = []
                page.on(
                    "response",
                    lambda r: decoded.append(r.status) if r.url.startswith(codec.url) else None,
                )
                await page.goto(page_url)
                # The history page opens on the workflow's input: text only decoding can produce.
                await page.get_by_text('"negotiation_id"').first.wait_for(timeout=30_000)
                body = await page.content()
                await browser.close()
            assert decoded and set(decoded) == {200}
            assert '"total_contract_value"' in body  # the sealed input, decoded
            assert "binary/encrypted" not in body
        finally:
            server.stop()
