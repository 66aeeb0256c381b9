"""Sign-in and API-key throttling: 429 with Retry-After after too many failures, audited.

Each test serves an app of its own (a real uvicorn on a free port, the shared dev server behind
it) whose throttle runs on a clock the test moves, so fifteen minutes pass without waiting. The
counts are per process: a fresh app starts with none, and the shared UI of the other tests never
sees these failures. A second client address is 127.0.0.2, another loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.ui.conftest import API_KEY, PASSWORD, csrf_of, serving, sign_in, write_directory
from ui.app import create_app
from ui.directory import load_directory
from ui.problems import PROBLEM_JSON
from ui.throttle import FailureCount, wait_in_words
from workers.settings import Settings

pytestmark = pytest.mark.integration

USER_LIMIT = 3
ADDRESS_LIMIT = 5
WINDOW = 900.0
OTHER_ADDRESS = "127.0.0.2"


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


@dataclass
class ThrottledUi:
    """A UI of its own: its URL, its clock, its audit log."""

    url: str
    clock: Clock
    audit_log: Path

    def http(self, address: str = "127.0.0.1", key: str | None = None) -> httpx.AsyncClient:
        """A client calling from ``address``, with an API key when given."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        transport = httpx.AsyncHTTPTransport(local_address=address)
        return httpx.AsyncClient(base_url=self.url, transport=transport, headers=headers)

    def access(self, kind: str) -> list[tuple[str, str, str]]:
        """(name, address, outcome) of each audited access attempt of ``kind``, oldest first."""
        if not self.audit_log.exists():
            return []
        records = [json.loads(line) for line in self.audit_log.read_text().splitlines()]
        return [(r["user"], r["address"], r["outcome"]) for r in records if r["kind"] == kind]


@pytest.fixture
async def ui(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[ThrottledUi]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        ui_throttle_user_failures=USER_LIMIT,
        ui_throttle_address_failures=ADDRESS_LIMIT,
        ui_throttle_window_seconds=WINDOW,
        ui_secret_file=tmp_path / "ui-secret",
        ui_audit_log=tmp_path / "audit.jsonl",
    )
    clock = Clock()
    directory = load_directory(write_directory(tmp_path / "approvers.yaml"))
    app = create_app(settings, directory, dev_env.client, clock=clock)
    async with serving(app) as url:
        yield ThrottledUi(url, clock, settings.ui_audit_log)


async def test_too_many_wrong_passwords_refuse_even_the_right_one_with_429_and_when_to_retry(
    ui: ThrottledUi,
):
    async with ui.http() as http:
        for _ in range(USER_LIMIT):
            assert (await sign_in(http, "ana", "not the password")).status_code == 401
        refused = await sign_in(http, "ana", PASSWORD)  # right, but not even checked
        inbox = await http.get("/")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(int(WINDOW))
    assert "Too many failed sign-ins" in refused.text and "try again in 15 minutes" in refused.text
    assert 'action="/login"' in refused.text
    assert inbox.status_code == 401  # no session was started
    wrong = [("ana", "127.0.0.1", "wrong_credentials")] * USER_LIMIT
    assert ui.access("sign_in") == [*wrong, ("ana", "127.0.0.1", "throttled")]


async def test_wrong_passwords_sent_at_once_are_counted_one_by_one(ui: ThrottledUi):
    # Each attempt from a session of its own, all posted together: none may slip past the
    # throttle while the others' password checks are still running.
    clients = [ui.http() for _ in range(USER_LIMIT + 5)]
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(c) for c in clients]
        tokens = [csrf_of((await http.get("/login")).text) for http in sessions]
        replies = await asyncio.gather(
            *(
                http.post(
                    "/login",
                    data={"username": "ana", "password": "wrong", "csrf": token, "next": "/"},
                )
                for http, token in zip(sessions, tokens, strict=True)
            )
        )
    codes = sorted(r.status_code for r in replies)
    assert codes == [401] * USER_LIMIT + [429] * 5


async def test_a_throttled_user_waits_what_retry_after_says_then_signs_in(ui: ThrottledUi):
    async with ui.http() as http:
        for _ in range(USER_LIMIT):
            await sign_in(http, "ana", "not the password")
        ui.clock.advance(WINDOW - 60)
        almost = await sign_in(http, "ana", PASSWORD)
        ui.clock.advance(60)
        after = await sign_in(http, "ana", PASSWORD)
    assert almost.status_code == 429 and almost.headers["retry-after"] == "60"
    assert "try again in 1 minute." in almost.text
    assert after.status_code == 303


async def test_a_successful_sign_in_starts_the_users_count_again(ui: ThrottledUi):
    async with ui.http() as http:
        for _ in range(USER_LIMIT - 1):
            await sign_in(http, "ana", "not the password")
        assert (await sign_in(http, "ana", PASSWORD)).status_code == 303
        again = [await sign_in(http, "ana", "not the password") for _ in range(USER_LIMIT - 1)]
        last = await sign_in(http, "ana", PASSWORD)
    assert [r.status_code for r in again] == [401] * (USER_LIMIT - 1)
    assert last.status_code == 303


async def test_one_address_failing_for_many_names_is_throttled_and_another_address_is_not(
    ui: ThrottledUi,
):
    async with ui.http() as here, ui.http(OTHER_ADDRESS) as there:
        for user in ("lee", "fay", "zed", "mallory", "nobody"):  # one failure per name
            assert (await sign_in(here, user, "guess")).status_code == 401
        refused = await sign_in(here, "ana", PASSWORD)
        elsewhere = await sign_in(there, "ana", PASSWORD)
    assert refused.status_code == 429 and "from this address" in refused.text
    assert elsewhere.status_code == 303
    assert ui.access("sign_in")[-2:] == [
        ("ana", "127.0.0.1", "throttled"),
        ("ana", OTHER_ADDRESS, "accepted"),
    ]


async def test_bad_api_keys_from_one_address_get_a_429_problem_but_a_proven_key_still_works(
    ui: ThrottledUi,
):
    async with ui.http(key=API_KEY) as backend:
        assert (await backend.get("/api/v1/negotiations")).status_code == 200
    wrong = [f"backend-test.wrong-{i}" for i in range(ADDRESS_LIMIT)]
    for key in wrong:
        async with ui.http(key=key) as guesser:
            assert (await guesser.get("/api/v1/negotiations")).status_code == 401
    async with (
        ui.http(key="backend-test.one-more") as guesser,
        ui.http(key=API_KEY) as backend,
        ui.http(OTHER_ADDRESS, key="backend-test.wrong") as other,
    ):
        refused = await guesser.get("/api/v1/negotiations")
        proven = await backend.get("/api/v1/negotiations")
        elsewhere = await other.get("/api/v1/negotiations")
        ui.clock.advance(WINDOW)
        later = await guesser.get("/api/v1/negotiations")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.headers["retry-after"] == str(int(WINDOW))
    problem = refused.json()
    assert problem["type"] == "/problems/throttled" and problem["status"] == 429
    assert problem["title"] == "Too many attempts"
    assert "try again in 15 minutes" in problem["detail"]
    assert proven.status_code == 200
    assert elsewhere.status_code == 401 and later.status_code == 401
    outcomes = [outcome for _, _, outcome in ui.access("api_key")]
    assert outcomes == ["accepted"] + ["wrong_credentials"] * ADDRESS_LIMIT + [
        "throttled",
        "wrong_credentials",
        "wrong_credentials",
    ]
    assert "wrong-0" not in ui.audit_log.read_text()  # key ids only, never a secret


def test_a_count_reopens_when_the_oldest_failure_of_the_window_expires():
    clock = Clock()
    count = FailureCount(limit=2, window=100, clock=clock)
    count.fail("ana")
    clock.advance(30)
    count.fail("ana")
    assert count.retry_after("ana") == 70 and count.retry_after("lee") == 0
    clock.advance(70)
    assert count.retry_after("ana") == 0
    count.fail("ana")  # one failure left in the window, and this one
    assert count.retry_after("ana") == 30


def test_a_full_count_forgets_the_least_recently_failed_names_first():
    count = FailureCount(limit=1, window=100, clock=Clock(), capacity=2)
    for name in ("a", "b", "a", "c"):
        count.fail(name)
    assert [count.retry_after(n) > 0 for n in ("a", "b", "c")] == [True, False, True]


def test_waits_read_in_plain_words():
    assert [wait_in_words(s) for s in (1, 40, 60, 61, 900)] == [
        "1 second",
        "40 seconds",
        "1 minute",
        "2 minutes",
        "15 minutes",
    ]
