"""``make up``: the whole demo on one machine, stopped by one Ctrl-C.

Creates on first run the encryption keyring (``.data/keys.json``) and the codec server's token
(``.data/codec-token``). Starts, in order: the Temporal dev server (state in
``.data/temporal.sqlite``, kept across runs; its Web UI decodes through the codec server), the
codec server, a worker writing notifications as files into ``.outbox/``, and a demo negotiation
(``fitnest simulate``) whose output appears in this terminal. Ctrl-C (or SIGTERM) stops them
in reverse order and exits 0. A worker that dies on its own is started again after a back-off
(1 s, doubling to 30 s, back to 1 s once it has run for a minute), which its log and this
terminal say; a server that dies stops the rest and exits 1; ports already taken exit 2. Ports
and data folder: see ``workers.devserver``.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from workers import telemetry
from workers.codec import ensure_keyring
from workers.devserver import (
    DevServerError,
    DevServerSettings,
    PortsInUseError,
    child_process_options,
    exit_process,
    find_executable,
    log_tail,
    ports_in_use,
    run_until_signalled,
    start,
    stop_process,
)
from workers.local_codec import (
    CODEC_READY_TIMEOUT,
    CodecWiring,
    ensure_token,
    wait_until_serving,
)
from workers.settings import Settings

OUTBOX = Path(".outbox")
CODEC_TOKEN_FILE = Path(".data/codec-token")
DEMO_REQUEST = Path("examples/automated_renewal.json")
#: A conductor-led copy of the renewal: its deal owner decides each counteroffer in the UI.
APPROVAL_DEMO_REQUEST = Path("ui/demo/renewal_for_approval.json")
DEMO_DIRECTORY = Path("ui/demo/approvers.yaml")
#: The simulated counterparty of the approval demo waits this long for the approver.
APPROVAL_DEMO_SECONDS = 3600
UI_READY_TIMEOUT = 30.0
WORKER_ARGV: Sequence[str] = (sys.executable, "-m", "workers.worker")
WORKER_READY_TIMEOUT = 30.0
#: Seconds before a dead worker is started again: doubling from the first to the last.
RESTART_BACKOFF = (1.0, 30.0)
#: A worker that ran this long before dying starts again after the first back-off step.
RESTART_RESET_SECONDS = 60.0


class ChildFailed(RuntimeError):
    """A process that should keep running did not; the message says which and why."""


@dataclass
class Child:
    """A supervised process: how to stop it, whether it is expected to finish on its own, and
    how to start it again when it should be restarted rather than stop everything."""

    name: str
    process: subprocess.Popen[bytes]
    stop: Callable[[], int]
    log: Path | None = None
    finishes: bool = False
    reported: bool = False
    restart: Callable[[], subprocess.Popen[bytes]] | None = None
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)
    next_start: float | None = None
    backoff: float = 0.0

    def exit_description(self) -> str:
        """How the child ended: an exit code, or the signal that killed it."""
        code = self.process.returncode
        return (
            f"was killed by {signal.Signals(-code).name}"
            if code < 0
            else f"exited with code {code}"
        )

    def failure(self) -> str:
        """Why this child is considered failed, for the error message."""
        where = f"; {self.log} ends with:\n{log_tail(self.log)}" if self.log else ""
        return f"{self.name} {self.exit_description()}{where}"


def _popen(
    argv: Sequence[str], env: dict[str, str], log: Path | None, mode: str = "wb"
) -> subprocess.Popen[bytes]:
    if log is None:
        return subprocess.Popen(argv, env=env, **child_process_options())
    with log.open(mode) as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, **child_process_options()
        )


def spawn(
    name: str,
    argv: Sequence[str],
    env: dict[str, str],
    log: Path | None = None,
    *,
    restartable: bool = False,
) -> Child:
    """Start a supervised child; its output goes to ``log``, or to this terminal without one.

    A ``restartable`` child that dies is started again (appending to its log) by :func:`supervise`.
    """
    child = Child(name, _popen(argv, env, log), stop=lambda: 0, log=log)
    child.stop = lambda: stop_process(child.process)
    if restartable:
        child.restart = lambda: _popen(argv, env, log, "ab")
    return child


def _say(child: Child, line: str) -> None:
    """Tell the terminal, and the child's log when it has one (the log is followed on screen)."""
    if child.log is None:
        print(line, flush=True)
        return
    with child.log.open("ab") as out:
        out.write(f"{line}\n".encode())


def restart_when_due(child: Child, now: float) -> None:
    """For a dead restartable child: schedule its restart (saying when), or start it if due."""
    assert child.restart is not None
    if child.next_start is None:
        first, longest = RESTART_BACKOFF
        ran = now - child.started_at
        child.backoff = (
            first if ran >= RESTART_RESET_SECONDS else min(max(child.backoff * 2, first), longest)
        )
        child.next_start = now + child.backoff
        _say(
            child,
            f"fitnest up: {child.name} {child.exit_description()}; starting it again in "
            f"{child.backoff:g} s (restart {child.restarts + 1}); the rest keeps running",
        )
    elif now >= child.next_start:
        child.process = child.restart()
        child.restarts += 1
        child.started_at, child.next_start = now, None
        _say(child, f"fitnest up: {child.name} started again (restart {child.restarts})")


async def wait_for_worker(client: Client, task_queue: str, worker: Child) -> None:
    """Return once a worker polls ``task_queue``; fail if the worker dies or never polls."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise ChildFailed(worker.failure())
        if (await client.workflow_service.describe_task_queue(request)).pollers:
            return
        await asyncio.sleep(0.2)
    raise ChildFailed(
        f"{worker.name} did not poll task queue {task_queue!r} within {WORKER_READY_TIMEOUT:.0f} s;"
        f" {worker.log} ends with:\n{log_tail(worker.log) if worker.log else ''}"
    )


def child_env(server: DevServerSettings, key_file: Path) -> dict[str, str]:
    """The environment of the worker and the demo: this server and keyring, notifications as files."""
    env = dict(os.environ)
    env.update(
        FITNEST_TEMPORAL_ADDRESS=server.address,
        FITNEST_NAMESPACE=server.namespace,
        FITNEST_OUTBOX_DIR=str(OUTBOX.resolve()),
        FITNEST_KEY_FILE=str(key_file.resolve()),
        FITNEST_SEAL_KEY_FILE=str(Settings().seal_key_file.resolve()),
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("FITNEST_UI_DIRECTORY", str(DEMO_DIRECTORY))
    # The worker writes to a file, which would make it choose JSON: locally, people read it.
    env.setdefault("FITNEST_LOG_FORMAT", "console")
    return env


def prepare_codec(settings: DevServerSettings, mine: Settings) -> CodecWiring:
    """Keyring and codec token (made on first run), and the Web UI's codec endpoint."""
    created = ensure_keyring(mine.key_file)
    if created:
        print(f"Created the encryption keyring {mine.key_file} (active key {created}).")
    if ensure_keyring(mine.seal_key_file):
        print(f"Created the workers' seal keyring {mine.seal_key_file} (internal messages).")
    taken = ports_in_use(mine.codec_host, [mine.codec_port])
    if taken:
        raise PortsInUseError(
            f"port {mine.codec_port} (codec server) already in use; pick another with "
            "FITNEST_CODEC_PORT=..."
        )
    wiring = CodecWiring(
        port=mine.codec_port, token=ensure_token(CODEC_TOKEN_FILE), server=settings
    )
    settings.ui_codec_endpoint = wiring.web_ui_endpoint
    return wiring


async def start_codec_server(wiring: CodecWiring, env: dict[str, str], log: Path) -> Child:
    """``fitnest codec-server`` for the Web UI and the CLI; returns once it answers."""
    argv = [str(find_executable("fitnest")), "codec-server"]
    child = spawn("codec server", argv, wiring.env(env), log=log)
    try:
        await wait_until_answering(child, wiring.base_url + "/healthz", CODEC_READY_TIMEOUT)
    except ChildFailed:
        child.stop()
        raise ChildFailed(child.failure()) from None
    return child


async def wait_until_answering(child: Child, url: str, timeout: float) -> None:
    """Return once ``url`` answers its health check; fail if ``child`` dies or never answers."""
    if await wait_until_serving(url, lambda: child.process.poll() is None, timeout):
        return
    if child.process.poll() is not None:
        raise ChildFailed(child.failure())
    raise ChildFailed(f"{child.name} did not answer at {url} within {timeout:.0f} s")


def _command_hint(fitnest: Path, server: DevServerSettings) -> str:
    """How to run ``fitnest`` from another terminal so that it reaches this server."""
    try:
        shown = str(fitnest.relative_to(Path.cwd()))
    except ValueError:
        shown = str(fitnest)
    mine = Settings()
    if (mine.temporal_address, mine.namespace) == (server.address, server.namespace):
        return shown
    env = f"FITNEST_TEMPORAL_ADDRESS={server.address} FITNEST_NAMESPACE={server.namespace}"
    return f"{env} {shown}"


def print_banner(
    server: DevServerSettings, worker_log: Path, fitnest: Path, demo: str, ui_url: str
) -> None:
    """Where to look, once everything is up."""
    cmd = _command_hint(fitnest, server)
    lines = [
        "",
        "Fitnest is up.",
        f"  Approver   {ui_url}  sign in as ana / fitnest-demo (the demo deal owner; demo only)",
        f"             API docs {ui_url}docs; demo API key demo-backend.fitnest-demo-key",
        f"  Web UI     {server.ui_url}",
        f"  Temporal   {server.address}, namespace {server.namespace}; "
        f"state in {server.db_file} (kept across runs)",
        f"  Outbox     {OUTBOX}/  (notifications land here as files)",
        f"  Payloads   encrypted with {Settings().key_file}; the Web UI decodes them through "
        f"the codec server ({CODEC_TOKEN_FILE} holds its token, see README: Security)",
        f"  Logs       {server.log_file}  {worker_log.parent / 'ui.log'}  {worker_log} (followed "
        f"below, FITNEST_LOG_FORMAT={os.environ.get('FITNEST_LOG_FORMAT', 'console')})",
        f"  Metrics    {telemetry.metrics_url(Settings()) or 'off (FITNEST_METRICS_PORT=0)'}",
        f"  Demo       {demo}  (its output follows)",
        f"             fitnest simulate --request {APPROVAL_DEMO_REQUEST}  "
        "(conductor-led: waits for ana's decision in the approver UI)",
        f"  Try        {cmd} list",
        f"             {cmd} status <negotiation id>",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


async def follow(log: Path, prefix: str = "worker | ") -> None:
    """Echo ``log`` (and what is appended to it) to this terminal, line by line, until cancelled."""
    with log.open("rb") as source:
        pending = b""
        while True:
            pending += source.read()
            *lines, pending = pending.split(b"\n")
            for line in lines:
                print(prefix + line.decode(errors="replace"), flush=True)
            await asyncio.sleep(0.3)


async def supervise(children: Sequence[Child], poll_seconds: float = 0.5) -> int:
    """Watch the children: restart a restartable one that died (with a back-off), until one that
    should keep running and cannot be restarted exits (then raise)."""
    while True:
        for child in children:
            if child.process.poll() is None or child.reported:
                continue
            if child.restart is not None:
                restart_when_due(child, time.monotonic())
                continue
            if not child.finishes:
                raise ChildFailed(child.failure())
            child.reported = True
            ok = child.process.returncode == 0
            verdict = "finished" if ok else f"{child.exit_description()} (see its output above)"
            print(f"\n{child.name} {verdict}; the rest keeps running. Ctrl-C stops it.", flush=True)
        await asyncio.sleep(poll_seconds)


def stop_all(children: list[Child]) -> None:
    """Stop the children in reverse start order, each politely first."""
    if children:
        print("\nStopping...", flush=True)
    for child in reversed(children):
        child.stop()
        print(f"  {child.name} {child.exit_description()}", flush=True)
    children.clear()


async def up() -> int:
    """Bring everything up, supervise it, and stop it all on the way out."""
    settings = DevServerSettings()
    mine = Settings()
    children: list[Child] = []
    try:
        wiring = prepare_codec(settings, mine)
        server = await start(settings)
        children.append(
            Child("Temporal dev server", server.process, server.stop, settings.log_file)
        )
        OUTBOX.mkdir(exist_ok=True)
        env = child_env(settings, mine.key_file)
        codec_log = settings.data_dir / "codec-server.log"
        children.append(await start_codec_server(wiring, env, codec_log))
        worker_log = settings.data_dir / "worker.log"
        worker = spawn("worker", WORKER_ARGV, env, log=worker_log, restartable=True)
        children.append(worker)
        await wait_for_worker(server.client, Settings().task_queue, worker)
        fitnest = find_executable("fitnest")
        ui_settings = Settings()
        ui_url = f"http://{ui_settings.ui_host}:{ui_settings.ui_port}/"
        ui = spawn("approver UI", [str(fitnest), "ui"], env, log=settings.data_dir / "ui.log")
        children.append(ui)
        await wait_until_answering(ui, f"{ui_url}healthz", UI_READY_TIMEOUT)
        demo_argv = [str(fitnest), "simulate", "--request", str(DEMO_REQUEST)]
        approval_argv = [
            str(fitnest),
            "simulate",
            "--request",
            str(APPROVAL_DEMO_REQUEST),
            "--max-seconds",
            str(APPROVAL_DEMO_SECONDS),
        ]
        print_banner(settings, worker_log, fitnest, shlex.join(["fitnest", *demo_argv[1:]]), ui_url)
        following = asyncio.create_task(follow(worker_log))
        for name, argv in (
            ("demo negotiation", demo_argv),
            ("approval demo (waits for ana in the UI)", approval_argv),
        ):
            demo = spawn(name, argv, env)
            demo.finishes = True
            children.append(demo)
        try:
            return await supervise(children)
        finally:
            following.cancel()
    except PortsInUseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (DevServerError, ChildFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        stop_all(children)


def main() -> None:
    """Entry point of ``python -m workers.up``."""
    exit_process(asyncio.run(run_until_signalled(up)))


if __name__ == "__main__":
    main()
