"""The audit log under attack: what one request can write is bounded, and a negotiation page reads
that negotiation's trail only.

Each test serves an app of its own (a real uvicorn on a free port) with an audit log of its own, on
the shared dev server and the task queue of the shared UI's worker, so the negotiations it reads
are real and the log holds only what the test wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from negotiation.models import Role
from tests.ui.conftest import UiServer, csrf_of, serving, sign_in, write_directory
from tests.ui.test_api import started_with_counter
from ui.app import create_app
from ui.audit import MAX_RECORD_BYTES, AttemptOutcome, AuditLog, attempt_by
from ui.directory import Approver, load_directory

pytestmark = pytest.mark.integration

HUGE = "x" * (256 * 1024)


class OwnUi:
    """A UI app of the test's own: its URL and its audit log."""

    def __init__(self, url: str, audit_log: Path) -> None:
        self.url = url
        self.audit_log = audit_log

    def http(self) -> httpx.AsyncClient:
        """A client with a cookie jar of its own."""
        return httpx.AsyncClient(base_url=self.url, timeout=60)

    def lines(self) -> list[str]:
        """The audit log's lines."""
        return self.audit_log.read_text(encoding="utf-8").splitlines()


@pytest.fixture
async def own_ui(ui_server: UiServer, tmp_path: Path) -> AsyncIterator[OwnUi]:
    settings = ui_server.settings.model_copy(
        update={
            "ui_audit_log": tmp_path / "audit.jsonl",
            "ui_secret_file": tmp_path / "ui-secret",
        }
    )
    directory = load_directory(write_directory(tmp_path / "approvers.yaml"))
    app = create_app(settings, directory, ui_server.env.client)
    async with serving(app) as url:
        yield OwnUi(url, settings.ui_audit_log)


async def _form(http: httpx.AsyncClient, nid: str) -> dict[str, str]:
    page = await http.get(f"/negotiations/{nid}")
    assert page.status_code == 200, page.text
    return dict(
        re.findall(r'name="(csrf|request_id|terms_version|message_id)" value="([^"]*)"', page.text)
    )


async def test_posts_with_huge_fields_write_one_bounded_line_each(
    ui_server: UiServer, own_ui: OwnUi
):
    nid = await started_with_counter(ui_server, "flood")
    huge = {
        "request_id": HUGE,
        "verdict": HUGE,
        "message_id": HUGE,
        "comment": HUGE,
        "terms_version": "9" * 1000,
    }
    async with own_ui.http() as zed, own_ui.http() as ana:
        await sign_in(zed, "zed")  # a participant in nothing
        await sign_in(ana, "ana")
        zed_token = csrf_of((await zed.get("/")).text)
        ana_token = (await _form(ana, nid))["csrf"]
        replies = [
            *[await zed.post(f"/negotiations/{nid}/decisions", data=huge) for _ in range(6)],
            *[
                await zed.post(f"/negotiations/{nid}/decisions", data={**huge, "csrf": zed_token})
                for _ in range(2)
            ],
            await ana.post(f"/negotiations/{nid}/decisions", data={**huge, "csrf": ana_token}),
        ]
        page = await ana.get(f"/negotiations/{nid}")
    # A non-participant's decision is refused (403) whatever it holds; ana's is not a decision.
    assert [r.status_code for r in replies] == [403] * 8 + [422]
    decisions = [line for line in own_ui.lines() if '"kind":"decision"' in line]
    assert len(decisions) == len(replies)  # every attempt is audited, once
    assert all(len(line.encode()) <= MAX_RECORD_BYTES for line in own_ui.lines())
    assert own_ui.audit_log.stat().st_size < 4096 * len(replies)  # not 9 x 1.3 MB
    record = json.loads(decisions[0])
    assert record["message_id"].startswith("x" * 128)
    assert record["message_id"].endswith(f"...[{len(HUGE) - 128} more characters cut]")
    assert record["terms_version"] is None
    # The trail shows what was tried on the negotiation after it was read; a form that did not
    # come from this site could name any id, and stays in the log only.
    assert page.status_code == 200
    trail = page.text[page.text.index('data-testid="audit"') :]
    assert trail.count('data-testid="audit-refused"') == 3
    assert "did not come from this site" not in trail


async def test_a_negotiation_page_reads_its_own_trail_and_no_one_elses(
    ui_server: UiServer, own_ui: OwnUi
):
    one = await started_with_counter(ui_server, "trail-one")
    other = await started_with_counter(ui_server, "trail-other")
    async with own_ui.http() as lee, own_ui.http() as ana:
        await sign_in(lee, "lee")  # legal: a counteroffer is the deal owner's to decide
        await sign_in(ana, "ana")
        for nid in (one, other):
            form = await _form(ana, nid)  # lee posts ana's form with his own session's token
            lee_token = csrf_of((await lee.get(f"/negotiations/{nid}")).text)
            reply = await lee.post(
                f"/negotiations/{nid}/decisions",
                data={**form, "csrf": lee_token, "verdict": "approve"},
            )
            assert reply.status_code == 403 and "needs the role deal_owner" in reply.text
        # Records of `one` planted where its page must not look: the log of everyone, and the
        # other negotiation's file. Either showing on the page means it read them.
        planted = {
            own_ui.audit_log: "read from the log of every negotiation",
            trail_file(own_ui.audit_log, other): "read from another negotiation's file",
        }
        for path, reason in planted.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(_refusal(one, reason) + "\n")
        page = await ana.get(f"/negotiations/{one}")
    assert page.status_code == 200
    trail = page.text[page.text.index('data-testid="audit"') :]
    assert "needs the role deal_owner; you hold legal" in trail
    for reason in planted.values():
        assert reason not in trail
    mine = trail_file(own_ui.audit_log, one).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["negotiation_id"] for line in mine] == [one]


def trail_file(audit_log: Path, negotiation_id: str) -> Path:
    """Where the attempts on one negotiation are kept: a file named by a hash of its id."""
    name = hashlib.sha256(negotiation_id.encode()).hexdigest()
    return audit_log.with_name(f"{audit_log.stem}.by-negotiation") / f"{name}.jsonl"


def _refusal(negotiation_id: str, reason: str) -> str:
    return json.dumps(
        {
            "at": datetime.now(UTC).isoformat(),
            "kind": "decision",
            "negotiation_id": negotiation_id,
            "request_id": "planted",
            "user": "lee",
            "participant": "lee",
            "role": "legal",
            "authority_limit": "0",
            "verdict": "approve",
            "terms_version": None,
            "message_id": "planted",
            "outcome": "refused_by_ui",
            "reason": reason,
        }
    )


LEE = Approver(
    user="lee", participant="lee", role=Role.LEGAL, authority_limit=Decimal(0), password_hash="x"
)


async def test_a_log_from_before_the_trail_files_is_indexed_once_at_start(tmp_path: Path):
    path = tmp_path / "audit.jsonl"
    path.write_text(
        "\n".join(
            [
                _refusal("neg-a", "first on a"),
                '{"kind":"sign_in","user":"ana","address":"127.0.0.1","outcome":"accepted"}',
                _refusal("neg-b", "on b"),
                _refusal("neg-a", "second on a"),
                '{"kind":"decision","negotiation_id":"neg-a", "torn',
            ]
        )
        + "\n"
    )
    before = path.read_bytes()
    log = AuditLog(path)
    assert [a.reason for a in await log.for_negotiation("neg-a")] == ["first on a", "second on a"]
    assert [a.reason for a in await log.for_negotiation("neg-b")] == ["on b"]
    assert path.read_bytes() == before  # the log of everyone stays as it was
    await log.append(
        attempt_by(
            LEE,
            negotiation_id="neg-a",
            request_id="r",
            verdict="approve",
            message_id="m",
            outcome=AttemptOutcome.REFUSED_BY_UI,
            reason="third on a",
        )
    )
    again = AuditLog(path)  # a restart does not index twice
    assert [a.reason for a in await again.for_negotiation("neg-a")][-2:] == [
        "second on a",
        "third on a",
    ]
    assert len(await again.for_negotiation("neg-a")) == 3


def test_a_record_stays_within_its_bound_whatever_the_characters():
    worst = "\x00" * 1_000_000  # six bytes a character once escaped as JSON
    attempt = attempt_by(
        LEE.model_copy(update={"user": worst, "participant": worst}),
        negotiation_id=worst,
        request_id=worst,
        verdict=worst,
        message_id=worst,
        outcome=AttemptOutcome.FAILED,
        reason=worst,
        terms_version=10**4000,
    )
    assert len(attempt.model_dump_json().encode()) <= MAX_RECORD_BYTES
