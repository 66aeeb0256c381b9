"""The approver UI served by a real uvicorn on a free port, beside a real worker on the dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from negotiation.models import NegotiationRequest
from ui.app import create_app
from ui.directory import hash_secret, load_directory
from workers.devserver import free_port
from workers.settings import Settings
from workers.worker import build_worker

if TYPE_CHECKING:
    from tests.ui.oidc_provider import Provider

ROOT = Path(__file__).resolve().parents[2]
DEMO_REQUEST = ROOT / "ui" / "demo" / "renewal_for_approval.json"
COUNTER_WITHIN = ROOT / "examples" / "responses" / "renewal_counter_within_mandate.json"
PASSWORD = "correct horse battery"
API_KEY = "backend-test.s3cret-key"

#: Test users: the demo negotiation's participants, and one who takes part in none.
USERS = {
    "ana": ("deal_owner", "100000"),
    "lee": ("legal", "0"),
    "fay": ("finance", "1000000"),
    "zed": ("deal_owner", "5000000"),
}


@dataclass
class UiServer:
    """The running UI: its URL, settings and the client behind it."""

    url: str
    settings: Settings
    env: WorkflowEnvironment
    task_queue: str

    def http(self, **kwargs: object) -> httpx.AsyncClient:
        """An HTTP client for the UI (cookies kept between calls)."""
        return httpx.AsyncClient(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def api(self, key: str | None = API_KEY) -> httpx.AsyncClient:
        """An HTTP client for the JSON API with an API key (or none)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.http(headers=headers)


def demo_request(tag: str) -> NegotiationRequest:
    """A fresh copy of the UI demo negotiation (conductor-led: the deal owner decides counters)."""
    data = json.loads(DEMO_REQUEST.read_text())
    data["negotiation_id"] = f"ui-{tag}-{uuid.uuid4().hex[:8]}"
    data["mandate"]["deadline"] = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    return NegotiationRequest.model_validate(data)


def counter_within() -> dict[str, object]:
    """A counterparty counter within the renewal's mandate, with a fresh message id."""
    data = json.loads(COUNTER_WITHIN.read_text())
    data["message_id"] = f"cp-{uuid.uuid4().hex[:8]}"
    return data


def write_directory(path: Path) -> Path:
    """The test approvers (:data:`USERS`, password :data:`PASSWORD`) and API key, as a directory file."""
    path.write_text(
        yaml.safe_dump(
            {
                "approvers": [
                    {
                        "user": user,
                        "participant": user,
                        "role": role,
                        "authority_limit": limit,
                        "password_hash": hash_secret(PASSWORD),
                    }
                    for user, (role, limit) in USERS.items()
                ],
                "api_keys": [
                    {"key_id": "backend-test", "secret_hash": hash_secret(API_KEY.split(".")[1])}
                ],
            }
        )
    )
    return path


@asynccontextmanager
async def serving(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """``app`` under a real uvicorn on ``port`` (a free one by default), until the block ends;
    yields its URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def ui_server(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[UiServer]:
    """A worker (retrospective window 0, so agreed deals complete) and the UI app under uvicorn."""
    workdir = tmp_path_factory.mktemp("ui")
    policy = workdir / "policy.yaml"
    policy.write_text("retrospective_days: 0\n")
    directory = write_directory(workdir / "approvers.yaml")
    task_queue = f"ui-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=task_queue,
        policy_file=policy,
        outbox_dir=workdir / "outbox",
        ledger_dir=workdir / "ledger",
        ui_secret_file=workdir / "ui-secret",
        ui_audit_log=workdir / "audit.jsonl",
        ui_directory=directory,
    )
    app = create_app(settings, load_directory(directory), dev_env.client)
    async with build_worker(dev_env.client, settings, task_queue=task_queue), serving(app) as url:
        yield UiServer(url, settings, dev_env, task_queue)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The real OpenID provider of the sign-in tests, one process for the test session."""
    from tests.ui.oidc_provider import running_provider

    with running_provider(tmp_path_factory.mktemp("oidc-provider")) as provider:
        yield provider


async def sign_in(http: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the form, CSRF token included."""
    page = await http.get("/login")
    return await http.post(
        "/login",
        data={"username": user, "password": password, "csrf": csrf_of(page.text), "next": "/"},
    )


async def signed_in_as(http: httpx.AsyncClient) -> str | None:
    """Who the inbox says is signed in (the first word of the header); None: the sign-in page."""
    inbox = await http.get("/")
    if inbox.status_code == 401:
        return None
    assert inbox.status_code == 200, inbox.text
    start = inbox.text.index('data-testid="who">') + len('data-testid="who">')
    return inbox.text[start:].split(" ", 1)[0]


def settings_in(ui_server: UiServer, folder: Path, **more: object) -> Settings:
    """``ui_server``'s settings with the UI's own files (audit, sessions, key) in ``folder``."""
    files = {"ui_audit_log": folder / "audit.jsonl", "ui_secret_file": folder / "ui-secret"}
    return ui_server.settings.model_copy(update=files | more)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def eventually(check, timeout: float = 60.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``check`` (async, returning a truthy value when done) until it is done."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > give_up:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(every)
