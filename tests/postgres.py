"""A throwaway PostgreSQL server for the tests: Debian's ``postgresql`` package, run as a non-root
user, on a free port, with its data in a temporary folder that goes when it stops.

PostgreSQL refuses to run as root, so under root (CI) it runs as the ``postgres`` user the
package creates (``runuser``); a developer's own user runs it directly. ``make test`` installs the
package where it is missing. Not a test module: ``tests/conftest.py`` starts one per session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from workers.devserver import free_port

#: The superuser initdb creates; trust authentication, loopback only.
SUPERUSER = "fitnest"
#: A loaded two-core machine starts PostgreSQL in about a second; this bounds a hang.
START_SECONDS = 60


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing or the server did not start; the message says why."""


def binaries() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: Debian keeps them out of PATH, per major version."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not versions:
        raise PostgresUnavailable(
            "PostgreSQL is not installed: run `make test` (it installs Debian's postgresql) or "
            "`sudo apt-get install -y postgresql`"
        )
    return Path(versions[-1]).parent


def _as_server_user(argv: Sequence[str]) -> list[str]:
    """``argv`` run as the ``postgres`` user when we are root, as ourselves otherwise."""
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class PostgresServer:
    """A running server: where it listens and how to stop it."""

    data_dir: Path
    port: int
    bin_dir: Path

    @property
    def host(self) -> str:
        """Loopback only."""
        return "127.0.0.1"

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """A libpq URL of ``database`` on this server (no password: trust authentication)."""
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its URL. Each test (or worker fleet) gets its own."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl`` on this server's data folder."""
        argv = _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args])
        return subprocess.run(argv, capture_output=True, text=True, timeout=START_SECONDS)

    def start(self) -> None:
        """Start (or start again) on the same port and data; return once it accepts clients."""
        options = (
            f"-p {self.port} -k {self.data_dir} -h {self.host} -c fsync=off -c max_connections=300"
        )
        done = self.pg_ctl(
            "-w", "-t", str(START_SECONDS), "-l", str(self.log), "-o", options, "start"
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"pg_ctl start failed ({done.returncode}): {done.stderr.strip()}\n{self.log_tail()}"
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clients are disconnected, ``immediate``: like a crash)."""
        self.pg_ctl("-m", mode, "-w", "stop")

    @property
    def log(self) -> Path:
        """The server's log file, inside its data folder."""
        return self.data_dir / "server.log"

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_server() -> PostgresServer:
    """initdb into a new temporary folder and start the server on a free port.

    The folder is made with :func:`tempfile.mkdtemp` under the system's temporary folder (pytest's
    own folders are private to the user running the tests, which the ``postgres`` user is not).
    """
    bin_dir = binaries()
    data_dir = Path(tempfile.mkdtemp(prefix="fitnest-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root needs the postgres user") from None
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", SUPERUSER]
    init = subprocess.run(
        _as_server_user([*initdb, "--no-sync", "-E", "UTF8", "--locale", "C"]),
        capture_output=True,
        text=True,
        timeout=START_SECONDS * 2,
    )
    if init.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed ({init.returncode}): {init.stderr.strip()}")
    # Another process may take the port between free_port() and the bind: try a few.
    for _ in range(5):
        server = PostgresServer(data_dir, free_port(), bin_dir)
        try:
            server.start()
            return server
        except PostgresUnavailable as err:
            last = err
    shutil.rmtree(data_dir, ignore_errors=True)
    raise last


def remove(server: PostgresServer) -> None:
    """Stop ``server`` and delete its data."""
    server.stop("immediate")
    shutil.rmtree(server.data_dir, ignore_errors=True)
