"""A real OpenID provider on localhost for the sign-in tests, and the UI configured to use it.

The provider is ``oidc-provider-mock`` (PyPI): Authlib's authorization server with discovery, a
JWKS, client registration, single-use codes bound to their client, nonces, RS256 ID tokens, an
end-session endpoint and its own sign-in page (a form asking for the subject). It runs as a
process of its own, started once per test session, with client registration required: the UI
is a registered client with a secret, and so is "another application" the attacks borrow from.

:class:`TamperingClient` is the UI's real OpenID client with one seam: a test may change the
provider's real token response on its way in (another application's ID token, an unsigned copy,
a clock moved past the expiry), as an attacker in the middle or a rogue provider would.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import yaml
from fastapi import FastAPI
from joserfc.jwk import KeySet

from tests.ui.conftest import UiServer, serving, settings_in
from ui.app import create_app
from ui.directory import load_directory
from ui.oidc import CALLBACK_PATH, OidcClient, OidcConfig, SignInFlow
from workers.devserver import free_port

#: The people the provider knows, by subject, with their claims.
PEOPLE: dict[str, dict[str, Any]] = {
    "sub-ana": {"email": "ana@fitnest.example", "email_verified": True, "name": "Ana"},
    "sub-fay": {"email": "fay@fitnest.example", "email_verified": True},
    "sub-lee": {"email": "lee@fitnest.example", "email_verified": True, "groups": ["legal"]},
    "sub-lee-left": {"email": "lee2@fitnest.example", "email_verified": True, "groups": []},
    "sub-unverified": {"email": "fay@fitnest.example", "email_verified": False},
    "sub-stranger": {"email": "stranger@elsewhere.example", "email_verified": True},
}

#: The approvers the OIDC tests' directory holds: matched by subject, by e-mail, by group.
APPROVERS = [
    {"user": "ana", "participant": "ana", "role": "deal_owner", "authority_limit": "100000",
     "subject": "sub-ana"},
    {"user": "fay", "participant": "fay", "role": "finance", "authority_limit": "1000000",
     "email": "fay@fitnest.example"},
    {"user": "lee", "participant": "lee", "role": "legal", "email": "lee@fitnest.example",
     "role_group": "legal"},
    {"user": "lee2", "participant": "lee", "role": "legal", "email": "lee2@fitnest.example",
     "role_group": "legal"},
]  # fmt: skip


@dataclass
class Client:
    """A client registered at the provider."""

    client_id: str
    secret: str
    redirect_uri: str


@dataclass
class Provider:
    """The running provider: its issuer URL (also its address)."""

    issuer: str

    def register(self, redirect_uri: str) -> Client:
        """Register a client (confidential, client_secret_basic) for ``redirect_uri``."""
        reply = httpx.post(f"{self.issuer}/oauth2/clients", json={"redirect_uris": [redirect_uri]})
        reply.raise_for_status()
        found = reply.json()
        return Client(found["client_id"], found["client_secret"], redirect_uri)

    def set_person(self, subject: str, claims: dict[str, Any]) -> None:
        """What the provider says about ``subject`` from the next sign-in on."""
        reply = httpx.put(f"{self.issuer}/users/{quote(subject, safe='')}", json=claims)
        assert reply.status_code == 204, reply.text

    async def approve(self, authorize_url: str, subject: str) -> str:
        """Sign in at the provider's own form as ``subject``: the callback URL it sends back."""
        async with httpx.AsyncClient(timeout=30) as http:
            form = await http.get(authorize_url)
            assert form.status_code == 200 and 'name="sub"' in form.text, form.text
            reply = await http.post(authorize_url, data={"sub": subject})
        assert reply.status_code in (302, 303), reply.text
        return reply.headers["location"]

    async def id_token_for(self, client: Client, nonce: str, subject: str = "sub-ana") -> str:
        """A real ID token the provider issues to ``client`` for ``subject`` with ``nonce``."""
        query = httpx.QueryParams(
            client_id=client.client_id,
            redirect_uri=client.redirect_uri,
            response_type="code",
            scope="openid email",
            state="other-state",
            nonce=nonce,
        )
        back = await self.approve(f"{self.issuer}/oauth2/authorize?{query}", subject)
        code = parse_qs(urlsplit(back).query)["code"][0]
        async with httpx.AsyncClient(timeout=30) as http:
            reply = await http.post(
                f"{self.issuer}/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": client.redirect_uri,
                },
                auth=(client.client_id, client.secret),
            )
        reply.raise_for_status()
        return str(reply.json()["id_token"])


@contextmanager
def running_provider(folder: Path) -> Iterator[Provider]:
    """``oidc-provider-mock`` as its own process on a free port, registration and nonce required."""
    port = free_port()
    log = folder / "provider.log"
    env = {**os.environ, "NO_COLOR": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "-H", "127.0.0.1", "-p", str(port),
             "--require-registration", "--require-nonce"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
    issuer = f"http://127.0.0.1:{port}"
    try:
        _wait_for_discovery(issuer, process, log)
        provider = Provider(issuer)
        for subject, claims in PEOPLE.items():
            provider.set_person(subject, claims)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_discovery(issuer: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the provider serves its discovery document (or the process has died)."""
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        if process.poll() is not None:
            pytest.fail(f"the OpenID provider exited: {log.read_text()}")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the OpenID provider did not answer within 60 s: {log.read_text()}")


Tamper = Callable[[SignInFlow, dict[str, Any]], Awaitable[dict[str, Any]]]


class TamperingClient(OidcClient):
    """The UI's OpenID client; ``tamper`` (when set) changes the provider's real token response,
    and ``offset`` moves the client's clock (seconds ahead of the real one)."""

    def __init__(self, config: OidcConfig) -> None:
        self.offset = 0.0
        self.tamper: Tamper | None = None
        super().__init__(config, clock=lambda: time.time() + self.offset)

    async def redeem(self, flow: SignInFlow, code: str) -> dict[str, Any]:
        """The real redemption at the provider, then the test's change, if any."""
        tokens = await super().redeem(flow, code)
        return await self.tamper(flow, tokens) if self.tamper else tokens


@dataclass
class OidcUi:
    """The UI signed in to through the provider, the provider, and the UI's client there."""

    url: str
    provider: Provider
    client: Client
    oidc: TamperingClient
    audit_log: Path
    directory_file: Path

    def oidc_keys(self) -> KeySet:
        """The provider's published signing keys."""
        return KeySet.import_key_set(httpx.get(f"{self.provider.issuer}/jwks").json())

    def http(self) -> httpx.AsyncClient:
        """A browser-like client of the UI (cookies kept, redirects not followed)."""
        return httpx.AsyncClient(base_url=self.url, timeout=60)

    async def begin(self, http: httpx.AsyncClient, next_path: str = "/") -> str:
        """Start signing in: the provider's authorization URL the UI redirects to."""
        reply = await http.get("/login/oidc", params={"next": next_path})
        assert reply.status_code == 303, reply.text
        location = reply.headers["location"]
        assert location.startswith(f"{self.provider.issuer}/oauth2/authorize?")
        return location

    async def sign_in(
        self, http: httpx.AsyncClient, subject: str, next_path: str = "/"
    ) -> httpx.Response:
        """The whole flow as ``subject``; the UI's answer to the provider's callback."""
        back = await self.provider.approve(await self.begin(http, next_path), subject)
        return await http.get(back)

    def access_records(self) -> list[dict[str, Any]]:
        """The sign-in records of the audit log."""
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text().splitlines()
        return [r for r in map(json.loads, lines) if r.get("kind") == "oidc_sign_in"]


def write_oidc_directory(path: Path, approvers: list[dict[str, Any]] | None = None) -> Path:
    """A directory of :data:`APPROVERS` (no passwords: they sign in through the provider)."""
    path.write_text(yaml.safe_dump({"approvers": approvers or APPROVERS}))
    return path


@asynccontextmanager
async def oidc_ui(
    provider: Provider,
    ui_server: UiServer,
    folder: Path,
    approvers: list[dict[str, Any]] | None = None,
    **app_options: Any,
):  # type: ignore[no-untyped-def]
    """A UI of its own on a free port, registered at the provider, beside ``ui_server``'s worker."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    client = provider.register(public + CALLBACK_PATH)
    directory = write_oidc_directory(folder / "approvers.yaml", approvers)
    settings = settings_in(
        ui_server,
        folder,
        ui_directory=directory,
        ui_public_url=public,
        oidc_issuer=provider.issuer,
        oidc_client_id=client.client_id,
        oidc_client_secret=client.secret,
        oidc_provider_name="the test provider",
    )
    config = OidcConfig.from_settings(settings)
    assert config is not None
    oidc = TamperingClient(config)
    app: FastAPI = create_app(
        settings, load_directory(directory), ui_server.env.client, oidc=oidc, **app_options
    )
    async with serving(app, port=port) as url:
        yield OidcUi(url, provider, client, oidc, folder / "audit.jsonl", directory)


def unsigned(id_token: str) -> str:
    """The same claims with ``alg: none`` and no signature."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = id_token.split(".")[1]
    return f"{header.decode().rstrip('=')}.{payload}."
