"""The UI when Temporal does not answer: 503 pages and problems, quickly, and back when it is.

Each test runs a Temporal dev server of its own (``workers.devserver``, on free ports, state in a
SQLite file) and makes it unreachable for real: never started, stopped, or frozen with SIGSTOP
(the process holds its sockets and answers nothing, as a hung server or a dropped network does).
The UI connects by itself from its settings, as ``fitnest ui`` does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from negotiation.models import CounterpartyResponse
from starters import client as api
from tests.conftest import own_server_settings
from tests.encryption import TEST_KEY_FILE, TEST_SEAL_KEY_FILE
from tests.ui.conftest import (
    API_KEY,
    counter_within,
    demo_request,
    serving,
    sign_in,
    write_directory,
)
from tests.workflows.harness import Negotiation
from ui.app import create_app
from ui.directory import load_directory
from ui.problems import PROBLEM_JSON
from workers.client import connect
from workers.devserver import DevServer, free_port, start
from workers.local_codec import wait_until_serving
from workers.settings import Settings
from workers.worker import build_worker

pytestmark = pytest.mark.integration

#: How long the UI waits for one Temporal call in these tests (FITNEST_UI_TEMPORAL_TIMEOUT).
TEMPORAL_TIMEOUT = 1.0
#: A 503 must come well within this: the deadline, one last attempt, and a loaded machine.
ANSWER_WITHIN = 4 * TEMPORAL_TIMEOUT
#: The HTTP client gives up here, so a UI that waits forever fails the test instead of hanging it.
HTTP_TIMEOUT = 20.0

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIRECTORY = ROOT / "ui" / "demo" / "approvers.yaml"
DEMO_API_KEY = "demo-backend.fitnest-demo-key"


def ui_settings(workdir: Path, temporal_port: int) -> Settings:
    """Settings of a UI that connects by itself to the dev server on ``temporal_port``."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=f"127.0.0.1:{temporal_port}",
        key_file=TEST_KEY_FILE,
        ui_temporal_timeout=TEMPORAL_TIMEOUT,
        ui_secret_file=workdir / "ui-secret",
        ui_audit_log=workdir / "audit.jsonl",
    )


class OwnTemporal:
    """A headless dev server of the test's own, stopped, started and frozen at will.

    Its state stays in a SQLite file, so a restart on the same port is the same cluster.
    """

    def __init__(self, workdir: Path) -> None:
        self.settings = own_server_settings(workdir / "temporal")
        self.server: DevServer | None = None

    async def start(self) -> None:
        """Start it (again) on its port."""
        self.server = await start(self.settings)

    def stop(self) -> None:
        """Stop it, if it runs."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP it for the block: its sockets stay open, nothing answers."""
        assert self.server is not None
        pid = self.server.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[OwnTemporal]:
    """A dev server for this test only, not started yet; stopped at the end."""
    own = OwnTemporal(tmp_path)
    yield own
    own.stop()


@asynccontextmanager
async def approver_ui(workdir: Path, temporal: OwnTemporal) -> AsyncIterator[httpx.AsyncClient]:
    """The UI app under uvicorn, connecting by itself; an HTTP client signed in as ana."""
    directory = load_directory(write_directory(workdir / "approvers.yaml"))
    app = create_app(ui_settings(workdir, temporal.settings.port), directory)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as http:
        assert (await sign_in(http, "ana")).status_code == 303  # needs no Temporal
        yield http


async def assert_unavailable(http: httpx.AsyncClient) -> None:
    """The inbox is a readable 503 page and the API a 503 problem, each within the deadline."""
    began = time.monotonic()
    page = await http.get("/")
    page_took = time.monotonic() - began
    assert page.status_code == 503, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Temporal unavailable" in page.text and "try again" in page.text
    assert "127.0.0.1:" not in page.text  # the operator's log has the address, not the page

    began = time.monotonic()
    reply = await http.get("/api/v1/negotiations", headers={"Authorization": f"Bearer {API_KEY}"})
    api_took = time.monotonic() - began
    assert reply.status_code == 503, reply.text
    assert reply.headers["content-type"] == PROBLEM_JSON
    problem = reply.json()
    assert problem["type"] == "/problems/unavailable" and problem["status"] == 503
    assert problem["title"] == "Temporal unavailable" and "Temporal" in problem["detail"]
    assert "127.0.0.1:" not in reply.text
    assert page_took < ANSWER_WITHIN and api_took < ANSWER_WITHIN, (page_took, api_took)


async def assert_available(http: httpx.AsyncClient) -> None:
    """The inbox and the API answer 200 again."""
    page = await http.get("/")
    assert page.status_code == 200, page.text
    reply = await http.get("/api/v1/negotiations", headers={"Authorization": f"Bearer {API_KEY}"})
    assert reply.status_code == 200, reply.text


async def test_ui_started_while_temporal_is_down_serves_503_until_temporal_comes_up(
    tmp_path: Path, temporal: OwnTemporal
):
    async with approver_ui(tmp_path, temporal) as http:
        assert (await http.get("/healthz")).status_code == 200
        await assert_unavailable(http)
        await temporal.start()
        await assert_available(http)


async def test_temporal_stopped_under_the_ui_gives_503_and_a_restart_brings_the_pages_back(
    tmp_path: Path, temporal: OwnTemporal
):
    await temporal.start()
    async with approver_ui(tmp_path, temporal) as http:
        await assert_available(http)
        temporal.stop()
        await assert_unavailable(http)
        assert (await http.get("/healthz")).status_code == 200
        await temporal.start()
        await assert_available(http)


async def test_a_hung_temporal_gives_503_within_the_deadline_instead_of_a_page_that_waits(
    tmp_path: Path, temporal: OwnTemporal
):
    await temporal.start()
    async with approver_ui(tmp_path, temporal) as http:
        await assert_available(http)
        with temporal.frozen():
            await assert_unavailable(http)
        await assert_available(http)


async def test_fitnest_ui_keeps_running_and_answers_503_while_temporal_is_down(tmp_path: Path):
    ui_port = free_port()
    env = {
        **os.environ,
        "FITNEST_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "FITNEST_KEY_FILE": str(TEST_KEY_FILE),
        "FITNEST_SEAL_KEY_FILE": str(TEST_SEAL_KEY_FILE),
        "FITNEST_UI_PORT": str(ui_port),
        "FITNEST_UI_DIRECTORY": str(DEMO_DIRECTORY),
        "FITNEST_UI_SECRET_FILE": str(tmp_path / "ui-secret"),
        "FITNEST_UI_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        "FITNEST_UI_TEMPORAL_TIMEOUT": str(TEMPORAL_TIMEOUT),
        "FITNEST_LOG_FORMAT": "json",
    }
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "starters.cli", "ui"],
            cwd=tmp_path,  # no .env of the checkout steers it
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{ui_port}"
    try:
        up = await wait_until_serving(f"{url}/healthz", lambda: process.poll() is None, 30)
        assert up, f"exit code {process.poll()}; log:\n{log.read_text()}"
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as http:
            reply = await http.get(
                "/api/v1/negotiations", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
            )
        assert reply.status_code == 503 and reply.headers["content-type"] == PROBLEM_JSON
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "temporal_unreachable" in log.read_text()


async def test_a_decision_sent_while_temporal_hangs_is_a_503_and_audited_as_failed(
    tmp_path: Path, temporal: OwnTemporal
):
    await temporal.start()
    settings = ui_settings(tmp_path, temporal.settings.port).model_copy(
        update={
            "task_queue": f"down-{uuid.uuid4().hex[:8]}",
            "outbox_dir": tmp_path / "outbox",
            "ledger_dir": tmp_path / "ledger",
        }
    )
    client = await connect(settings)
    request = demo_request("down")
    directory = load_directory(write_directory(tmp_path / "approvers.yaml"))
    app = create_app(settings, directory)
    async with (
        build_worker(client, settings, task_queue=settings.task_queue),
        serving(app) as url,
        httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as http,
    ):
        await api.start_negotiation(client, request, task_queue=settings.task_queue)
        n = Negotiation(client, request, tmp_path / "outbox")
        await n.until(lambda s: s.our_terms is not None, timeout=60)
        await api.send_response(
            client, request.negotiation_id, CounterpartyResponse.model_validate(counter_within())
        )
        status = await n.until(lambda s: bool(s.pending_decisions), timeout=60)
        assert (await sign_in(http, "ana")).status_code == 303
        page = await http.get(f"/negotiations/{request.negotiation_id}")
        form = dict(
            re.findall(
                r'name="(csrf|request_id|terms_version|message_id)" value="([^"]*)"', page.text
            )
        )
        with temporal.frozen():
            reply = await http.post(
                f"/negotiations/{request.negotiation_id}/decisions",
                data={**form, "verdict": "approve"},
            )
        assert reply.status_code == 503, reply.text
        records = [json.loads(line) for line in settings.ui_audit_log.read_text().splitlines()]
        [attempt] = [r for r in records if r["kind"] == "decision"]
        assert (attempt["participant"], attempt["outcome"]) == ("ana", "failed")
        assert attempt["request_id"] == status.pending_decisions[0].request_id
        assert "did not answer" in attempt["reason"]
        await client.get_workflow_handle(request.negotiation_id).terminate(reason="test done")
