"""Debian's chromium, driven by Playwright, against the real UI, worker and dev server.

Never ``playwright install``: the tests launch the system chromium (``make test`` installs it) and
fail, not skip, without it. Screenshots of the inbox, the negotiation and the KPIs go to the
git-ignored ``.data/screenshots/``, or to ``docs/screenshots/`` (the README's pictures) when
``FITNEST_UPDATE_SCREENSHOTS=1``: a test run leaves the tracked files alone unless asked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from tests.ui.conftest import PASSWORD, UiServer, eventually
from tests.ui.oidc_provider import Provider, oidc_ui
from tests.ui.test_api import started_with_counter

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]


def screenshot_folder() -> Path:
    """``docs/screenshots`` when FITNEST_UPDATE_SCREENSHOTS=1, else ``.data/screenshots``."""
    if os.environ.get("FITNEST_UPDATE_SCREENSHOTS") == "1":
        return ROOT / "docs" / "screenshots"
    return ROOT / ".data" / "screenshots"


SCREENSHOTS = screenshot_folder()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserContext]:
    """Debian's chromium with a fresh profile (its own user-data-dir)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        yield context
        await context.close()


async def signed_in_page(browser: BrowserContext, ui_server: UiServer, user: str) -> Page:
    await browser.clear_cookies()  # one profile for the module: each test signs in afresh
    page = await browser.new_page()
    await page.goto(f"{ui_server.url}/")
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("who")).to_contain_text(user)
    return page


async def test_deal_owner_signs_in_approves_and_watches_the_negotiation_move_on(
    browser: BrowserContext, ui_server: UiServer
):
    nid = await started_with_counter(ui_server, "browser")
    page = await signed_in_page(browser, ui_server, "ana")

    row = page.get_by_test_id("inbox-row").filter(has_text=nid)

    async def in_inbox() -> bool:
        await page.goto(f"{ui_server.url}/")
        return await row.count() == 1

    await eventually(in_inbox)
    await expect(row).to_contain_text("counteroffer")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "inbox.png", full_page=True)

    await row.get_by_role("link", name=nid).click()
    await expect(page.get_by_test_id("movement")).to_have_text("development")
    terms = page.get_by_test_id("terms")
    await expect(terms).to_contain_text("within walk-away")
    await expect(terms).to_contain_text("meets target")
    await page.screenshot(path=SCREENSHOTS / "negotiation.png", full_page=True)

    form = page.get_by_test_id("decision-form").first
    await form.get_by_label("Comment").fill("their budget is within our mandate")
    await form.get_by_role("button", name="Approve").click()
    await expect(page.get_by_test_id("flash")).to_contain_text("Recorded: ana approved request")
    await expect(page.get_by_test_id("audit")).to_contain_text("their budget is within our mandate")

    async def asked_to_sign() -> bool:
        await page.reload()
        movement = await page.get_by_test_id("movement").inner_text()
        return (
            movement == "closure"
            and "signature" in await page.get_by_test_id("pending").inner_text()
        )

    await eventually(asked_to_sign)  # the negotiation moved on: agreed, now the signatures

    # Sign on our side through the page, theirs through the API: the deal closes as agreed.
    await page.get_by_test_id("decision-form").first.get_by_role("button", name="Approve").click()
    await expect(page.get_by_test_id("flash")).to_contain_text("Recorded")
    async with ui_server.api() as api:
        sign = {"message_id": f"sign-{uuid.uuid4().hex[:6]}", "sequence": 2, "action": "sign"}
        assert (
            await api.post(f"/api/v1/negotiations/{nid}/responses", json=sign)
        ).status_code == 202

    async def agreed() -> bool:
        await page.reload()
        return await page.get_by_test_id("outcome").inner_text() == "agreed"

    await eventually(agreed)

    async def counted() -> bool:
        await page.goto(f"{ui_server.url}/kpis")
        return (
            "agreed" in await page.get_by_test_id("chart-outcomes").inner_text()
            and ("1 negotiation" in await page.content() or "negotiations" in await page.content())
            and "conductor_led" in await page.get_by_test_id("chart-cycle").inner_text()
        )

    await eventually(counted)
    await page.screenshot(path=SCREENSHOTS / "kpis.png", full_page=True)
    await page.close()


async def test_a_refused_decision_shows_the_workflows_reason(
    browser: BrowserContext, ui_server: UiServer
):
    nid = await started_with_counter(ui_server, "refused")
    page = await signed_in_page(browser, ui_server, "ana")
    await page.goto(f"{ui_server.url}/negotiations/{nid}")
    form = page.get_by_test_id("decision-form").first
    await form.locator("summary").click()
    await form.get_by_label("Total contract value").fill("10000.00")  # far below the walk-away
    await form.get_by_role("button", name="Revise").click()
    refusal = page.get_by_test_id("refusal")
    await expect(refusal).to_contain_text("beyond the walk-away on total_contract_value")
    await expect(page.get_by_test_id("audit")).to_contain_text("refused by workflow")
    await page.close()


def test_screenshots_go_to_an_ignored_folder_unless_an_update_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("FITNEST_UPDATE_SCREENSHOTS", raising=False)
    default = screenshot_folder()
    monkeypatch.setenv("FITNEST_UPDATE_SCREENSHOTS", "1")
    assert screenshot_folder() == ROOT / "docs" / "screenshots"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(default / "inbox.png")], cwd=ROOT)
    assert ignored.returncode == 0, f"{default} is not ignored by git"


async def test_a_decision_outside_the_role_shows_why_in_the_browser(
    browser: BrowserContext, ui_server: UiServer
):
    nid = await started_with_counter(ui_server, "legal")
    page = await signed_in_page(browser, ui_server, "lee")
    await page.goto(f"{ui_server.url}/negotiations/{nid}")
    await expect(page.get_by_test_id("not-yours")).to_contain_text(
        "needs the role deal_owner; you hold legal"
    )
    await expect(page.get_by_test_id("decision-form")).to_have_count(0)
    await page.close()


async def test_an_approver_signs_in_at_the_provider_decides_and_the_audit_names_that_identity(
    browser: BrowserContext,
    ui_server: UiServer,
    oidc_provider: Provider,
    tmp_path: Path,
):
    nid = await started_with_counter(ui_server, "oidc")
    async with oidc_ui(oidc_provider, ui_server, tmp_path) as ui:
        await browser.clear_cookies()
        page = await browser.new_page()
        await page.goto(f"{ui.url}/")
        await page.get_by_test_id("oidc-sign-in").click()
        # The provider's own sign-in page.
        await page.get_by_placeholder("sub").fill("sub-ana")
        await page.get_by_role("button", name="Authorize").click()
        await expect(page.get_by_test_id("who")).to_contain_text("ana")
        await expect(page.get_by_test_id("signed-in-as")).to_contain_text(
            "oidc:ana@fitnest.example (sub sub-ana"
        )

        await page.goto(f"{ui.url}/negotiations/{nid}")
        form = page.get_by_test_id("decision-form").first
        await form.get_by_role("button", name="Approve").click()
        await expect(page.get_by_test_id("flash")).to_contain_text("Recorded: ana approved")
        decided = [
            r
            for r in map(json.loads, ui.audit_log.read_text().splitlines())
            if r.get("kind", "decision") == "decision" and r["negotiation_id"] == nid
        ]
        assert [r["outcome"] for r in decided] == ["accepted"]
        assert decided[0]["signed_in_as"].startswith("oidc:ana@fitnest.example (sub sub-ana at")

        # Sign-out ends the provider's session too: its page, then back to ours.
        await page.get_by_role("button", name="Sign out").click()
        await page.get_by_role("button", name="End session").click()
        await expect(page).to_have_url(f"{ui.url}/login")
        await expect(page.get_by_test_id("oidc-sign-in")).to_be_visible()
        await page.close()


async def test_someone_the_directory_does_not_hold_sees_why_after_the_provider_signs_them_in(
    browser: BrowserContext, ui_server: UiServer, oidc_provider: Provider, tmp_path: Path
):
    async with oidc_ui(oidc_provider, ui_server, tmp_path) as ui:
        await browser.clear_cookies()
        page = await browser.new_page()
        await page.goto(f"{ui.url}/kpis")
        await page.get_by_test_id("oidc-sign-in").click()
        await page.get_by_placeholder("sub").fill("sub-stranger")
        await page.get_by_role("button", name="Authorize").click()
        await expect(page.get_by_test_id("sign-in-refused")).to_contain_text(
            "the approver directory has no entry for this account"
        )
        await expect(page.get_by_test_id("provider-identity")).to_contain_text(
            "stranger@elsewhere.example"
        )
        await expect(page.get_by_test_id("who")).to_have_count(0)
        await page.goto(f"{ui.url}/kpis")
        await expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
        assert ui.access_records()[-1]["outcome"] == "no_entry"
        await page.close()
