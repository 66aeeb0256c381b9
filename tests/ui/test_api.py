"""The JSON API against a real worker and dev server: each endpoint, and each error as a problem."""

from __future__ import annotations

import uuid

import pytest

from tests.ui.conftest import UiServer, counter_within, demo_request, eventually

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def started_with_counter(ui_server: UiServer, tag: str) -> str:
    """A demo negotiation, started and countered through the API, waiting for its deal owner."""
    request = demo_request(tag)
    async with ui_server.api() as api:
        started = await api.post("/api/v1/negotiations", json=request.model_dump(mode="json"))
        assert started.status_code == 201, started.text
        nid = request.negotiation_id

        async def awaiting_offer() -> bool:
            status = (await api.get(f"/api/v1/negotiations/{nid}")).json()
            return status["our_terms"] is not None

        await eventually(awaiting_offer)
        sent = await api.post(f"/api/v1/negotiations/{nid}/responses", json=counter_within())
        assert sent.status_code == 202, sent.text

        async def pending() -> bool:
            status = (await api.get(f"/api/v1/negotiations/{nid}")).json()
            return bool(status["pending_decisions"])

        await eventually(pending)
    return nid


async def test_api_without_a_key_or_with_a_wrong_one_answers_401_problem(ui_server: UiServer):
    for key in (None, "backend-test.wrong", "nobody.s3cret-key"):
        async with ui_server.api(key) as api:
            reply = await api.get("/api/v1/negotiations")
        assert reply.status_code == 401
        assert reply.headers["content-type"] == PROBLEM
        problem = reply.json()
        assert problem["type"] == "/problems/unauthenticated" and problem["status"] == 401
        assert "API key" in problem["detail"]
        assert reply.headers["www-authenticate"].startswith("Bearer")


async def test_start_answers_201_then_409_when_the_same_id_starts_again(ui_server: UiServer):
    request = demo_request("start")
    async with ui_server.api() as api:
        first = await api.post("/api/v1/negotiations", json=request.model_dump(mode="json"))
        again = await api.post("/api/v1/negotiations", json=request.model_dump(mode="json"))
    assert first.status_code == 201
    assert first.json()["started"] is True
    assert first.headers["location"] == f"/api/v1/negotiations/{request.negotiation_id}"
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert again.json()["type"] == "/problems/already-started"


async def test_invalid_start_request_answers_422_naming_every_field(ui_server: UiServer):
    body = demo_request("bad").model_dump(mode="json")
    body["currency"] = "euro"
    del body["mandate"]["deadline"]
    async with ui_server.api() as api:
        reply = await api.post("/api/v1/negotiations", json=body)
        not_json = await api.post(
            "/api/v1/negotiations", content=b"{", headers={"content-type": "application/json"}
        )
    assert reply.status_code == 422
    assert reply.headers["content-type"] == PROBLEM
    fields = {e["field"] for e in reply.json()["errors"]}
    assert {"body.currency", "body.mandate.deadline"} <= fields
    assert "body.currency" in reply.json()["detail"]
    assert not_json.status_code == 400 and not_json.json()["type"] == "/problems/not-json"


async def test_a_deadline_already_past_answers_422(ui_server: UiServer):
    body = demo_request("past").model_dump(mode="json")
    body["mandate"]["deadline"] = "2020-01-01T00:00:00Z"
    async with ui_server.api() as api:
        reply = await api.post("/api/v1/negotiations", json=body)
    assert reply.status_code == 422
    assert "already past" in reply.json()["detail"]


@pytest.mark.parametrize("char", ["\r\n", "\x0b", "\x85", "\u2028"], ids=repr)
async def test_a_counterparty_name_that_is_not_one_line_answers_422(ui_server: UiServer, char: str):
    """It was accepted with 201, and then failed the notification built from it."""
    body = demo_request("crlf").model_dump(mode="json")
    body["counterparty"]["name"] = f"Acme{char}Bcc: evil@attacker.example"
    async with ui_server.api() as api:
        reply = await api.post("/api/v1/negotiations", json=body)
        assert reply.status_code == 422, reply.text
        assert "one line" in reply.text
        missing = await api.get(f"/api/v1/negotiations/{body['negotiation_id']}")
    assert missing.status_code == 404


async def test_status_of_an_unknown_negotiation_answers_404_problem(ui_server: UiServer):
    async with ui_server.api() as api:
        reply = await api.get("/api/v1/negotiations/no-such-negotiation")
        respond = await api.post(
            "/api/v1/negotiations/no-such-negotiation/responses", json=counter_within()
        )
    assert reply.status_code == 404 and reply.headers["content-type"] == PROBLEM
    assert "no-such-negotiation" in reply.json()["detail"]
    assert respond.status_code == 404
    async with ui_server.api() as api:
        nowhere = await api.get("/api/v1/nowhere")
    assert nowhere.status_code == 404 and nowhere.headers["content-type"] == PROBLEM


async def test_response_is_delivered_and_the_decision_shows_as_pending(ui_server: UiServer):
    nid = await started_with_counter(ui_server, "pending")
    async with ui_server.api() as api:
        status = (await api.get(f"/api/v1/negotiations/{nid}")).json()
        assert status["their_terms"]["terms"]["total_contract_value"] == "50000.00"

        async def listed() -> list[dict[str, object]]:
            reply = await api.get("/api/v1/decisions/pending", params={"role": "deal_owner"})
            assert reply.status_code == 200
            return [p for p in reply.json()["pending"] if p["negotiation_id"] == nid]

        [item] = await eventually(listed)
        other_role = await api.get("/api/v1/decisions/pending", params={"role": "legal"})
    assert item["decision"]["kind"] == "counteroffer"
    assert item["decision"]["role"] == "deal_owner"
    assert item["counterparty"] == "Northwind Traders"
    assert nid not in {p["negotiation_id"] for p in other_role.json()["pending"]}


async def test_invalid_response_answers_422_and_a_closed_negotiation_409(ui_server: UiServer):
    request = demo_request("closed")
    async with ui_server.api() as api:
        await api.post("/api/v1/negotiations", json=request.model_dump(mode="json"))
        nid = request.negotiation_id
        invalid = await api.post(
            f"/api/v1/negotiations/{nid}/responses",
            json={"message_id": "x", "sequence": 1, "action": "counter"},
        )
        reject = {"message_id": f"r-{uuid.uuid4().hex[:6]}", "sequence": 1, "action": "reject"}
        assert (
            await api.post(f"/api/v1/negotiations/{nid}/responses", json=reject)
        ).status_code == 202

        async def closed() -> bool:
            return (await api.get(f"/api/v1/negotiations/{nid}")).json()["outcome"] is not None

        await eventually(closed)
        again = await api.post(
            f"/api/v1/negotiations/{nid}/responses", json={**reject, "message_id": "late"}
        )
    assert invalid.status_code == 422
    assert "terms" in invalid.json()["detail"]
    assert again.status_code == 409 and again.json()["type"] == "/problems/closed"
    assert "closed" in again.json()["detail"]


async def test_list_filters_by_counterparty_and_refuses_unknown_playbook(ui_server: UiServer):
    nid = await started_with_counter(ui_server, "list")
    async with ui_server.api() as api:

        async def listed() -> bool:
            reply = await api.get(
                "/api/v1/negotiations",
                params={"counterparty": "Northwind Traders", "awaiting": "deal_owner"},
            )
            return nid in {n["negotiation_id"] for n in reply.json()["negotiations"]}

        await eventually(listed)
        nobody = await api.get("/api/v1/negotiations", params={"counterparty": "Nobody Ltd"})
        bad = await api.get("/api/v1/negotiations", params={"playbook": "freestyle"})
        quoted = await api.get("/api/v1/negotiations", params={"counterparty": "x' OR 1=1"})
    assert nobody.json()["negotiations"] == []
    assert bad.status_code == 422 and "freestyle" in bad.json()["detail"]
    assert quoted.status_code == 422 and "quotes" in quoted.json()["detail"]


async def test_openapi_document_and_docs_page_are_served_without_a_cdn(ui_server: UiServer):
    async with ui_server.http() as http:
        schema = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    paths = schema["paths"]
    assert {
        "/api/v1/negotiations",
        "/api/v1/negotiations/{negotiation_id}",
        "/api/v1/negotiations/{negotiation_id}/responses",
        "/api/v1/decisions/pending",
    } <= set(paths)
    assert (
        "application/problem+json"
        in paths["/api/v1/negotiations"]["post"]["responses"]["409"]["content"]
    )
    # What the API validates, the document states: patterns, enums, lengths, the 400.
    components = schema["components"]["schemas"]
    assert components["NegotiationRequest"]["properties"]["negotiation_id"]["pattern"]
    for path in ("/api/v1/negotiations", "/api/v1/negotiations/{negotiation_id}/responses"):
        assert "400" in paths[path]["post"]["responses"]
    listed = {p["name"]: p["schema"] for p in paths["/api/v1/negotiations"]["get"]["parameters"]}
    assert listed["counterparty"]["anyOf"][0]["pattern"]
    assert listed["counterparty"]["anyOf"][0]["maxLength"] == 200
    assert listed["playbook"]["anyOf"][0] == {"$ref": "#/components/schemas/PlaybookName"}
    [path_id] = paths["/api/v1/negotiations/{negotiation_id}"]["get"]["parameters"]
    assert path_id["schema"]["pattern"] == "^[a-z0-9][a-z0-9._-]{1,127}$"
    assert docs.status_code == 200
    assert "/api/v1/decisions/pending" in docs.text
    assert "cdn" not in docs.text.lower()


async def test_a_filter_with_a_control_character_or_a_made_up_page_token_is_a_422_problem_at_once(
    ui_server: UiServer,
):
    deadline = ui_server.settings.ui_temporal_timeout
    async with ui_server.api() as api:
        replies = [
            await api.get("/api/v1/decisions/pending", params={"counterparty": "a\x00b"}),
            await api.get("/api/v1/negotiations", params={"counterparty": "a\x00b"}),
            await api.get("/api/v1/negotiations", params={"counterparty": "a\x1bb"}),
        ]
        token = await api.get("/api/v1/decisions/pending", params={"page_token": "bWFkZS11cA=="})
    for reply in replies:
        assert reply.status_code == 422, reply.text
        assert reply.headers["content-type"] == PROBLEM
        assert "control characters" in reply.json()["detail"]
    assert token.status_code == 422 and token.headers["content-type"] == PROBLEM
    assert "page token is not valid" in token.json()["detail"]
    assert all(r.elapsed.total_seconds() < deadline for r in [*replies, token])


async def test_a_page_token_serves_only_the_filters_it_was_given_for(ui_server: UiServer):
    ids = {await started_with_counter(ui_server, f"tok{i}") for i in range(2)}
    first_page = {"role": "deal_owner", "page_size": 1}
    async with ui_server.api() as api:

        async def both_listed() -> bool:
            reply = await api.get("/api/v1/decisions/pending", params={"role": "deal_owner"})
            return ids <= {p["negotiation_id"] for p in reply.json()["pending"]}

        await eventually(both_listed)
        token = (await api.get("/api/v1/decisions/pending", params=first_page)).json()[
            "next_page_token"
        ]
        assert token
        own = await api.get("/api/v1/decisions/pending", params={**first_page, "page_token": token})
        other = await api.get(
            "/api/v1/decisions/pending",
            params={**first_page, "page_token": token, "counterparty": "Northwind Traders"},
        )
    assert own.status_code == 200, own.text
    assert other.status_code == 422, other.text
    assert "page token is not valid" in other.json()["detail"]


async def test_a_response_is_answered_from_the_negotiation_202_taken_409_with_why_not(
    ui_server: UiServer,
):
    nid = await started_with_counter(ui_server, "answers")
    path = f"/api/v1/negotiations/{nid}/responses"
    async with ui_server.api() as api:
        stale = await api.post(path, json={**counter_within(), "message_id": "old", "sequence": 1})
        sign = await api.post(
            path, json={"message_id": f"s-{uuid.uuid4().hex[:6]}", "sequence": 9, "action": "sign"}
        )
        fresh = {**counter_within(), "message_id": f"c-{uuid.uuid4().hex[:6]}", "sequence": 5}
        taken = await api.post(path, json=fresh)
        repeat = await api.post(path, json=fresh)
        reused = await api.post(path, json={**fresh, "sequence": 6})
    assert stale.status_code == 409 and stale.json()["type"] == "/problems/stale", stale.text
    assert "sequence 1 is not after" in stale.json()["detail"]
    assert sign.status_code == 409 and sign.json()["type"] == "/problems/not-possible", sign.text
    assert taken.status_code == 202 and taken.json()["sequence"] == 5, taken.text
    assert taken.json()["kept_for_later"] is False and taken.json()["taken_at"]
    assert repeat.status_code == 202 and repeat.json() == taken.json()  # a retry: the same answer
    assert reused.status_code == 409 and reused.json()["type"] == "/problems/reused", reused.text
