"""`make up` keeps a worker running: one that dies is started again after a back-off, which its
log says, and the rest of the stack keeps running; a server that dies still stops everything."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from workers import up

#: Dies (exit 3) at its first two starts, then runs until stopped; counts starts in a file.
FLAKY = """
import pathlib, sys, time
starts = pathlib.Path(sys.argv[1])
n = int(starts.read_text() or 0) + 1 if starts.exists() else 1
starts.write_text(str(n))
print(f"start {n}", flush=True)
if n <= 2:
    sys.exit(3)
while True:
    time.sleep(1)
"""


async def wait_for_text(log: Path, text: str, count: int = 1) -> None:
    """Until ``log`` holds ``text`` ``count`` times (bounded: it stops a hang, times nothing)."""
    for _ in range(600):
        if log.exists() and log.read_text().count(text) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{log} never said {text!r} {count} time(s):\n{log.read_text()}")


async def test_a_worker_that_dies_is_started_again_with_a_growing_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(up, "RESTART_BACKOFF", (0.2, 0.4))
    log = tmp_path / "worker.log"
    argv = [sys.executable, "-c", FLAKY, str(tmp_path / "starts")]
    worker = up.spawn("worker", argv, dict(os.environ), log=log, restartable=True)
    server = up.spawn("server", [sys.executable, "-c", "import time; time.sleep(600)"], {})
    supervising = asyncio.create_task(up.supervise([server, worker], poll_seconds=0.05))
    try:
        await wait_for_text(log, "start 3")
        text = log.read_text()
        assert "worker exited with code 3; starting it again in 0.2 s (restart 1)" in text
        assert "starting it again in 0.4 s (restart 2); the rest keeps running" in text
        assert worker.restarts == 2 and worker.backoff == pytest.approx(0.4)
        assert worker.process.poll() is None and server.process.poll() is None
        assert not supervising.done()
    finally:
        supervising.cancel()
        up.stop_all([server, worker])
    assert worker.process.poll() is not None


async def test_a_server_that_dies_still_stops_the_stack(tmp_path: Path) -> None:
    server = up.spawn("Temporal dev server", [sys.executable, "-c", "raise SystemExit(4)"], {})

    with pytest.raises(up.ChildFailed, match="exited with code 4"):
        await asyncio.wait_for(up.supervise([server], poll_seconds=0.05), 30)
