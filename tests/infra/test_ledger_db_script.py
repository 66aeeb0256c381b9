"""deploy/ledger-db.sh, run by compose's ledger-db job, against a real PostgreSQL server: it
makes the ledger's own user and database, can run again, and the ledger then works there."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import psycopg

from activities.ledger_postgres import PostgresLedger
from tests.postgres import SUPERUSER, PostgresServer

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "ledger-db.sh"


def run_script(postgres: PostgresServer, user: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PGHOST": postgres.host,
        "PGPORT": str(postgres.port),
        "PGUSER": SUPERUSER,
        "LEDGER_DB_USER": user,
        "LEDGER_DB_PASSWORD": "demo-only-not-a-secret",
    }
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


async def test_the_job_makes_the_ledger_user_and_database_and_can_run_again(
    postgres: PostgresServer,
) -> None:
    user = "fitnest_ledger_" + os.urandom(4).hex()
    first, again = run_script(postgres, user), run_script(postgres, user)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    url = postgres.url(user, user=user)
    ledger = PostgresLedger(url)
    async with ledger.claim("k/1") as claim:  # the worker makes its tables as that user
        await claim.record(("smtp",), True)
    await ledger.close()
    owner = await asyncio.to_thread(_owner, postgres, user)
    assert owner == user


def _owner(postgres: PostgresServer, database: str) -> str:
    with psycopg.connect(postgres.url()) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None
    return str(row[0])
