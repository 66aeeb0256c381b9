"""A worker started while Temporal is down keeps trying, says so in its log and its metrics, and
starts polling once the server answers (compose starts it again only when it exits; it need not)."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx

from tests.conftest import own_server_settings
from tests.encryption import TEST_KEY_FILE, TEST_SEAL_KEY_FILE
from tests.integration.processes import worker_environment
from workers import devserver
from workers.devserver import free_port
from workers.settings import Settings

UNREACHABLE = re.compile(
    r"^fitnest_worker_temporal_unreachable(?:_total)?(?:\{[^}]*\})? (\d+)", re.M
)


async def until_logged(log: Path, event: str, count: int = 1) -> None:
    """Until the worker's log names ``event`` ``count`` times (bounded: stops a hang)."""
    for _ in range(1200):
        if log.exists() and log.read_text().count(f'"{event}"') >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the worker never logged {event} x{count}:\n{log.read_text()}")


async def test_a_worker_started_before_temporal_retries_and_says_so_then_polls(
    tmp_path: Path,
) -> None:
    server_settings = own_server_settings(tmp_path / "server")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        temporal_address=server_settings.address,
        key_file=TEST_KEY_FILE,
        seal_key_file=TEST_SEAL_KEY_FILE,
        outbox_dir=tmp_path / "outbox",
        ledger_dir=tmp_path / "ledger",
        metrics_port=free_port(),
        log_format="json",
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers.worker",
            cwd=tmp_path,
            env=worker_environment(settings),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    server = None
    try:
        await until_logged(log, "worker.temporal_unreachable", 2)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{settings.metrics_port}/metrics")).text
        counted = UNREACHABLE.search(metrics)
        assert counted and int(counted.group(1)) >= 2, metrics
        assert worker.returncode is None  # still trying, not exited

        server = await devserver.start(server_settings)
        await until_logged(log, "worker.started")

        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 60) == 0
        assert '"worker.stopped"' in log.read_text()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        if server is not None:
            await asyncio.to_thread(server.stop)
