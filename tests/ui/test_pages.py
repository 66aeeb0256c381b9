"""The approver pages over HTTP: sessions, CSRF, role and authority at the edge, audit, the inbox's cost."""

from __future__ import annotations

import json
import re

import pytest

from negotiation.models import Role
from tests.ui.conftest import UiServer, csrf_of, eventually, sign_in
from tests.ui.test_api import started_with_counter
from tests.unreadable import start_sealed_with_a_gone_key
from ui.inbox import InboxFilters, InboxItem, PageTokens, inbox_page
from ui.negotiations import RequestCache

pytestmark = pytest.mark.integration


async def _decision_form(ui_server: UiServer, http, nid: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    page = await http.get(f"/negotiations/{nid}")
    assert page.status_code == 200, page.text
    fields = dict(
        re.findall(r'name="(csrf|request_id|terms_version|message_id)" value="([^"]*)"', page.text)
    )
    return fields


def _audit(ui_server: UiServer, kind: str = "decision") -> list[dict[str, object]]:
    path = ui_server.settings.ui_audit_log
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r["kind"] == kind]


async def test_pages_without_a_session_answer_401_with_the_sign_in_form(ui_server: UiServer):
    async with ui_server.http() as http:
        for path in ("/", "/negotiations/anything", "/kpis"):
            reply = await http.get(path)
            assert reply.status_code == 401
            assert 'action="/login"' in reply.text
        wrong = await sign_in(http, "ana", "not the password")
        unknown = await sign_in(http, "mallory", "whatever")
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    assert unknown.status_code == 401


async def test_a_form_without_the_session_csrf_token_is_refused(ui_server: UiServer):
    nid = await started_with_counter(ui_server, "csrf")
    async with ui_server.http() as http:
        assert (await sign_in(http, "ana")).status_code == 303
        form = await _decision_form(ui_server, http, nid)
        reply = await http.post(
            f"/negotiations/{nid}/decisions", data={**form, "csrf": "forged", "verdict": "approve"}
        )
        login_without = await http.post("/login", data={"username": "ana", "password": "x"})
    assert reply.status_code == 403 and "did not come from this site" in reply.text
    assert login_without.status_code == 403
    [attempt] = [a for a in _audit(ui_server) if a["negotiation_id"] == nid]
    assert (
        attempt["outcome"] == "refused_by_ui" and "did not come from this site" in attempt["reason"]
    )


async def test_a_decision_outside_the_role_is_refused_403_and_audited(ui_server: UiServer):
    nid = await started_with_counter(ui_server, "role")
    async with ui_server.http() as ana, ui_server.http() as lee:
        await sign_in(ana, "ana")
        form = await _decision_form(ui_server, ana, nid)
        await sign_in(lee, "lee")
        lee_page = await lee.get(f"/negotiations/{nid}")
        # Lee posts the request id with his own session's token; identity comes from the session.
        reply = await lee.post(
            f"/negotiations/{nid}/decisions",
            data={**form, "csrf": csrf_of(lee_page.text), "verdict": "approve", "approver": "ana"},
        )
    assert reply.status_code == 403
    assert "needs the role deal_owner; you hold legal" in reply.text
    [attempt] = [a for a in _audit(ui_server) if a["negotiation_id"] == nid]
    assert attempt["participant"] == "lee" and attempt["outcome"] == "refused_by_ui"
    assert "Not recorded" in reply.text and "refused by ui" in reply.text


async def test_an_inbox_filter_that_cannot_be_used_is_a_422_page_with_the_reason(
    ui_server: UiServer,
):
    async with ui_server.http() as ana:
        await sign_in(ana, "ana")
        playbook = await ana.get("/", params={"playbook": "jazz"})
        quoted = await ana.get("/", params={"counterparty": "a' OR WorkflowId != '"})
    assert playbook.status_code == 422 and "jazz" in playbook.text, playbook.text
    # A quote cannot end the literal and add a clause: refused before any query is made.
    assert quoted.status_code == 422 and "cannot contain quotes" in quoted.text, quoted.text


async def test_someone_elses_negotiation_is_forbidden(ui_server: UiServer):
    nid = await started_with_counter(ui_server, "other")
    async with ui_server.http() as zed:
        await sign_in(zed, "zed")
        page = await zed.get(f"/negotiations/{nid}")
        inbox = await zed.get("/")
    assert page.status_code == 403 and "not a participant" in page.text
    assert nid not in inbox.text  # zed holds deal_owner, but not on this negotiation


async def test_approval_is_recorded_and_a_repeat_shows_the_workflows_reason(ui_server: UiServer):
    nid = await started_with_counter(ui_server, "approve")
    async with ui_server.http() as ana:
        await sign_in(ana, "ana")
        form = await _decision_form(ui_server, ana, nid)
        done = await ana.post(f"/negotiations/{nid}/decisions", data={**form, "verdict": "approve"})
        assert done.status_code == 303
        page = await ana.get(done.headers["location"])
        assert "Recorded: ana approved request" in page.text
        again = await ana.post(
            f"/negotiations/{nid}/decisions",
            data={**form, "verdict": "approve", "message_id": form["message_id"] + "-again"},
        )
    assert again.status_code == 409
    assert "already decided (approve by ana)" in again.text
    outcomes = [a["outcome"] for a in _audit(ui_server) if a["negotiation_id"] == nid]
    assert outcomes == ["accepted", "refused_by_workflow"]


async def test_inbox_page_queries_only_the_negotiations_it_shows(ui_server: UiServer):
    ids = {await started_with_counter(ui_server, f"page{i}") for i in range(3)}
    client = ui_server.env.client
    requests = RequestCache(client)
    filters = InboxFilters(
        roles=["deal_owner"], counterparty="Northwind Traders", task_queue=ui_server.task_queue
    )

    def anyone(pending, _request, _status):  # type: ignore[no-untyped-def]
        return InboxItem(pending=pending)

    async def three_listed() -> bool:
        page = await inbox_page(
            client, requests, filters, anyone, tokens=PageTokens("test"), page_size=100
        )
        return ids <= {r.negotiation_id for r in page.rows}

    await eventually(three_listed)
    tokens = PageTokens("test")
    first = await inbox_page(client, requests, filters, anyone, tokens=tokens, page_size=2)
    assert first.status_queries == 2 and len(first.rows) == 2
    assert first.next_token is not None
    second = await inbox_page(
        client, requests, filters, anyone, tokens=tokens, page_size=2, token=first.next_token
    )
    assert second.status_queries == len(second.rows) <= 2
    assert not {r.negotiation_id for r in first.rows} & {r.negotiation_id for r in second.rows}


async def test_revised_terms_that_are_not_terms_are_refused_422_with_the_field(ui_server: UiServer):
    nid = await started_with_counter(ui_server, "badterms")
    async with ui_server.http() as ana:
        await sign_in(ana, "ana")
        form = await _decision_form(ui_server, ana, nid)
        reply = await ana.post(
            f"/negotiations/{nid}/decisions",
            data={**form, "verdict": "revise", "terms.total_contract_value": "lots"},
        )
    assert reply.status_code == 422
    assert "the decision is not valid: total_contract_value" in reply.text
    [attempt] = [a for a in _audit(ui_server) if a["negotiation_id"] == nid]
    assert attempt["outcome"] == "refused_by_ui" and attempt["verdict"] == "revise"


async def test_an_inbox_filter_with_a_control_character_or_a_made_up_page_is_a_422_at_once(
    ui_server: UiServer,
):
    # Both once reached Temporal, which failed them as if it were down: a 503 after its retries.
    deadline = ui_server.settings.ui_temporal_timeout
    async with ui_server.http() as ana:
        await sign_in(ana, "ana")
        nul = await ana.get("/", params={"counterparty": "North\x00wind"})
        line = await ana.get("/", params={"counterparty": "North\u2028wind"})
        made_up = await ana.get("/", params={"page": "bWFkZS11cA=="})
    for reply in (nul, line):
        assert reply.status_code == 422, reply.text
        assert "control characters" in reply.text
    assert made_up.status_code == 422, made_up.text
    assert "page token is not valid" in made_up.text
    assert all(r.elapsed.total_seconds() < deadline for r in (nul, line, made_up))


async def test_a_negotiation_that_cannot_be_read_is_named_in_the_inbox_and_the_api_beside_the_rest(
    ui_server: UiServer,
):
    """Someone with access to the namespace started a ``NegotiationWorkflow`` awaiting the deal
    owner, its input sealed with a key no keyring holds: its request cannot be decrypted."""
    nid = await started_with_counter(ui_server, "beside")
    client = ui_server.env.client
    gone = await start_sealed_with_a_gone_key(
        client, ui_server.task_queue, awaiting=Role.DEAL_OWNER
    )
    reason = "a payload cannot be decrypted with this keyring (UnknownKeyError)"
    try:
        async with ui_server.api() as api:

            async def both_listed() -> dict[str, object] | None:
                reply = await api.get(
                    "/api/v1/decisions/pending", params={"role": "deal_owner", "page_size": 100}
                )
                assert reply.status_code == 200, reply.text
                body = reply.json()
                pending = {p["negotiation_id"] for p in body["pending"]}
                named = {u["negotiation_id"] for u in body["unreadable"]}
                return body if nid in pending and gone.id in named else None

            body = await eventually(both_listed)
        assert {"negotiation_id": gone.id, "reason": reason} in body["unreadable"]
        assert gone.id not in {p["negotiation_id"] for p in body["pending"]}

        async with ui_server.http() as ana:
            await sign_in(ana, "ana")
            inbox = await ana.get("/")
        assert inbox.status_code == 200, inbox.text
        assert nid in inbox.text and gone.id in inbox.text
        assert f"status unavailable: {reason}" in inbox.text
    finally:
        await gone.terminate(reason="test done")
