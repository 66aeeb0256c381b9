"""Signing in through a real OpenID provider on localhost (``oidc-provider-mock``, its own
process), and every way a sign-in must be refused: each with a page that says why, an audit
record, and no session.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.ui.conftest import UiServer, csrf_of, signed_in_as
from tests.ui.oidc_provider import (
    APPROVERS,
    OidcUi,
    Provider,
    oidc_ui,
    unsigned,
    write_oidc_directory,
)
from ui.oidc import SignInFlow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def ui(
    oidc_provider: Provider, ui_server: UiServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OidcUi]:
    """A UI registered at the provider, on the shared worker's task queue."""
    async with oidc_ui(oidc_provider, ui_server, tmp_path_factory.mktemp("oidc-ui")) as found:
        yield found


@pytest.fixture(autouse=True)
def untampered(ui: OidcUi):  # type: ignore[no-untyped-def]
    """Each test starts with the token response as the provider sent it, on the real clock."""
    ui.oidc.tamper, ui.oidc.offset = None, 0.0
    yield
    ui.oidc.tamper, ui.oidc.offset = None, 0.0


def _refused_with(reply: httpx.Response, status: int, words: str) -> None:
    assert reply.status_code == status, reply.text
    assert 'data-testid="sign-in-refused"' in reply.text
    assert words in reply.text, reply.text


def _last_record(ui: OidcUi) -> dict[str, Any]:
    return ui.access_records()[-1]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


async def test_an_approver_signs_in_through_the_provider_as_the_subject_it_vouches_for(ui: OidcUi):
    async with ui.http() as http:
        back = await ui.sign_in(http, "sub-ana", next_path="/kpis")
        assert back.status_code == 303 and back.headers["location"] == "/kpis"
        assert await signed_in_as(http) == "ana"
        inbox = await http.get("/")
        assert "oidc:ana@fitnest.example (sub sub-ana at http://127.0.0.1:" in inbox.text
    record = _last_record(ui)
    assert record["outcome"] == "accepted" and record["user"] == "ana"
    assert record["identity"].startswith("oidc:ana@fitnest.example (sub sub-ana")


async def test_the_authorization_request_carries_a_pkce_challenge_of_the_sessions_verifier(
    ui: OidcUi,
):
    async with ui.http() as http:
        query = parse_qs(urlsplit(await ui.begin(http)).query)
        # The signed (not encrypted) session cookie: base64 JSON, then the signature.
        payload = http.cookies["fitnest_session"].split(".")[0]
        session = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    flow = SignInFlow.model_validate(session["oidc_flow"])
    digest = hashlib.sha256(flow.code_verifier.encode()).digest()
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).decode().rstrip("=")]
    assert query["state"] == [flow.state] and query["nonce"] == [flow.nonce]
    assert query["redirect_uri"] == [f"{ui.url}/login/oidc/callback"]


async def test_a_verified_email_matches_the_directory_entry(ui: OidcUi):
    async with ui.http() as http:
        assert (await ui.sign_in(http, "sub-fay")).status_code == 303
        assert await signed_in_as(http) == "fay"


async def test_an_unverified_email_matches_nobody(ui: OidcUi):
    async with ui.http() as http:
        reply = await ui.sign_in(http, "sub-unverified")
        _refused_with(reply, 403, "has not verified the e-mail address fay@fitnest.example")
        assert await signed_in_as(http) is None
    assert _last_record(ui)["outcome"] == "no_entry"


async def test_someone_the_directory_does_not_hold_sees_why_is_audited_and_can_do_nothing(
    ui: OidcUi,
):
    async with ui.http() as http:
        reply = await ui.sign_in(http, "sub-stranger")
        _refused_with(reply, 403, "the approver directory has no entry for this account")
        assert "stranger@elsewhere.example" in reply.text
        assert await signed_in_as(http) is None
        page = await http.get("/login")
        attempt = await http.post("/logout", data={"csrf": csrf_of(page.text)})
        assert attempt.status_code == 303  # nothing to end: no session was started
    record = _last_record(ui)
    assert record["outcome"] == "no_entry" and record["user"] == ""
    assert record["identity"].startswith("oidc:stranger@elsewhere.example")


async def test_the_role_holds_only_while_the_provider_names_its_group(ui: OidcUi):
    async with ui.http() as http:
        assert (await ui.sign_in(http, "sub-lee")).status_code == 303
        assert await signed_in_as(http) == "lee"
    async with ui.http() as http:
        reply = await ui.sign_in(http, "sub-lee-left")
        _refused_with(reply, 403, "needs membership of the group legal")


async def test_an_answer_with_another_state_is_refused_and_the_sign_in_cannot_be_finished(
    ui: OidcUi,
):
    async with ui.http() as http:
        back = await ui.provider.approve(await ui.begin(http), "sub-ana")
        forged = await http.get(_with_query(back, state="made-up"))
        _refused_with(forged, 401, "state differs")
        assert _last_record(ui)["outcome"] == "refused"
        # The real answer after that finds no sign-in under way: a refused flow starts again.
        late = await http.get(back)
        _refused_with(late, 400, "no sign-in is under way in this browser")
        assert await signed_in_as(http) is None


async def test_an_answer_in_a_browser_that_started_no_sign_in_is_refused(ui: OidcUi):
    async with ui.http() as starter, ui.http() as victim:
        back = await ui.provider.approve(await ui.begin(starter), "sub-ana")
        # Login CSRF: the answer is planted in someone else's browser.
        _refused_with(await victim.get(back), 400, "no sign-in is under way")
        assert await signed_in_as(victim) is None


async def test_a_replayed_code_is_refused_by_the_provider(ui: OidcUi):
    async with ui.http() as http:
        first = await ui.provider.approve(await ui.begin(http), "sub-ana")
        assert (await http.get(first)).status_code == 303
        code = parse_qs(urlsplit(first).query)["code"][0]
    async with ui.http() as http:
        second = await ui.begin(http)
        state = parse_qs(urlsplit(second).query)["state"][0]
        replay = await http.get("/login/oidc/callback", params={"code": code, "state": state})
        _refused_with(replay, 401, "the identity provider refused the sign-in code")
        assert await signed_in_as(http) is None
    assert _last_record(ui)["outcome"] == "refused"


async def _swapped_in(ui: OidcUi, swap) -> httpx.Response:  # type: ignore[no-untyped-def]
    """A sign-in as ana whose real token response has its ID token replaced by ``swap``."""

    async def tamper(flow: SignInFlow, tokens: dict[str, Any]) -> dict[str, Any]:
        return tokens | {"id_token": await swap(flow, tokens["id_token"])}

    ui.oidc.tamper = tamper
    async with ui.http() as http:
        reply = await ui.sign_in(http, "sub-ana")
        assert await signed_in_as(http) is None
    assert _last_record(ui)["outcome"] == "refused"
    return reply


async def test_an_id_token_issued_to_another_application_is_refused(ui: OidcUi):
    other = ui.provider.register("http://127.0.0.1:9/elsewhere")

    async def theirs(flow: SignInFlow, _ours: str) -> str:
        return await ui.provider.id_token_for(other, flow.nonce)  # same person, same nonce

    _refused_with(await _swapped_in(ui, theirs), 401, "issued to another application")


async def test_an_id_token_from_another_issuer_is_refused(ui: OidcUi):
    # The same provider process under another name issues tokens as another issuer, same keys.
    elsewhere = Provider(ui.provider.issuer.replace("127.0.0.1", "localhost"))

    async def theirs(flow: SignInFlow, _ours: str) -> str:
        return await elsewhere.id_token_for(ui.client, flow.nonce)

    _refused_with(await _swapped_in(ui, theirs), 401, "issued by another provider")


async def test_an_id_token_of_another_sign_in_is_refused_by_its_nonce(ui: OidcUi):
    async def another_sign_in(_flow: SignInFlow, _ours: str) -> str:
        return await ui.provider.id_token_for(ui.client, "some-other-nonce")

    _refused_with(await _swapped_in(ui, another_sign_in), 401, "nonce differs")


async def test_an_unsigned_id_token_is_refused(ui: OidcUi):
    async def alg_none(_flow: SignInFlow, ours: str) -> str:
        return unsigned(ours)

    _refused_with(await _swapped_in(ui, alg_none), 401, "not signed with an algorithm")


async def test_an_id_token_signed_with_hmac_under_our_own_client_secret_is_refused(ui: OidcUi):
    async def hmac_signed(_flow: SignInFlow, ours: str) -> str:
        claims = jwt.decode(ours, ui.oidc_keys(), algorithms=["RS256"]).claims
        key = OctKey.import_key(ui.client.secret.encode())
        return jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])

    _refused_with(await _swapped_in(ui, hmac_signed), 401, "not signed with an algorithm")


async def test_an_id_token_signed_with_a_key_the_provider_never_published_is_refused(ui: OidcUi):
    async def forged(_flow: SignInFlow, ours: str) -> str:
        claims = jwt.decode(ours, ui.oidc_keys(), algorithms=["RS256"]).claims
        attacker = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
        return jwt.encode({"alg": "RS256", "kid": "attacker"}, claims, attacker)

    _refused_with(await _swapped_in(ui, forged), 401, "signature does not verify")


async def test_an_id_token_with_a_changed_claim_no_longer_verifies(ui: OidcUi):
    async def promoted(_flow: SignInFlow, ours: str) -> str:
        header, payload, signature = ours.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sub"] = "sub-fay"
        changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"{header}.{changed}.{signature}"

    _refused_with(await _swapped_in(ui, promoted), 401, "signature does not verify")


async def test_an_expired_id_token_is_refused(ui: OidcUi):
    async def late(_flow: SignInFlow, ours: str) -> str:
        ui.oidc.offset = 2 * 3600.0  # the provider's tokens last an hour; this one arrives late
        return ours

    _refused_with(await _swapped_in(ui, late), 401, "the ID token has expired")


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
async def test_a_post_login_target_on_another_site_is_refused(ui: OidcUi, target: str):
    async with ui.http() as http:
        reply = await http.get("/login/oidc", params={"next": target})
        _refused_with(reply, 400, "not on this site")
    assert _last_record(ui)["reason"].endswith("(an open redirect)")


async def test_the_provider_saying_no_is_refused_with_its_reason(ui: OidcUi):
    async with ui.http() as http:
        authorize = await ui.begin(http)
        async with httpx.AsyncClient(timeout=30) as at_provider:
            denied = await at_provider.post(authorize, data={"action": "deny"})
        reply = await http.get(denied.headers["location"])
        _refused_with(reply, 401, "the identity provider did not sign you in (access_denied")


async def test_sign_out_ends_the_providers_session_too(ui: OidcUi):
    async with ui.http() as http:
        assert (await ui.sign_in(http, "sub-ana")).status_code == 303
        token = csrf_of((await http.get("/")).text)
        out = await http.post("/logout", data={"csrf": token})
        assert out.status_code == 303
        location = out.headers["location"]
        assert location.startswith(f"{ui.provider.issuer}/oauth2/end_session?")
        query = parse_qs(urlsplit(location).query)
        assert query["post_logout_redirect_uri"] == [f"{ui.url}/login"]
        assert query["id_token_hint"][0].count(".") == 2
        assert await signed_in_as(http) is None


async def test_someone_removed_from_the_directory_loses_access_at_the_next_request(
    oidc_provider: Provider, ui_server: UiServer, tmp_path: Path
):
    async with oidc_ui(oidc_provider, ui_server, tmp_path) as own, own.http() as http:
        assert (await own.sign_in(http, "sub-fay")).status_code == 303
        assert await signed_in_as(http) == "fay"
        without_fay = [a for a in APPROVERS if a["user"] != "fay"]
        write_oidc_directory(own.directory_file, without_fay)
        assert await signed_in_as(http) is None
