"""The sent ledger in a real PostgreSQL server: what two hosts' workers agree on.

Each ``PostgresLedger`` below stands for one host: its own pools and connections, nothing shared
with the other but the database. Sends go to a real SMTP server, whose count is the proof.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.channels import SmtpChannel
from activities.errors import LedgerUnavailable, NotificationInProgress
from activities.ledger import SentLedger, open_ledger
from activities.ledger_postgres import PostgresLedger
from activities.notifications import Delivery, Notification, Notifier
from tests.activities.smtp_test_server import SENDER, SmtpServer
from tests.integration.processes import smtp_server as stalling_smtp_server
from tests.postgres import remove, start_server
from workers.settings import Settings

MakeNotification = Callable[..., Notification]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def two_hosts(ledger_url: str) -> AsyncIterator[tuple[PostgresLedger, PostgresLedger]]:
    """Two ledgers on one database, as two hosts' workers would have."""
    a, b = PostgresLedger(ledger_url), PostgresLedger(ledger_url)
    yield a, b
    await a.close()
    await b.close()


def smtp_notifier(host: str, port: int, ledger: PostgresLedger) -> Notifier:
    return Notifier([SmtpChannel(host, port, SENDER, timeout=5.0)], ledger)


async def test_a_claim_held_on_one_host_refuses_the_other_until_recorded(two_hosts) -> None:
    a, b = two_hosts
    key = "renewal-northwind-2027/opening/offer-v1"

    async with a.claim(key) as held:
        assert held.entry is None
        with pytest.raises(NotificationInProgress):
            async with b.claim(key):
                raise AssertionError("both hosts hold the claim")
        await held.record(("smtp",), True)

    async with b.claim(key) as later:
        assert later.entry is not None
        assert (later.entry.channels, later.entry.complete) == (("smtp",), True)


async def test_the_same_notification_from_two_hosts_reaches_the_mail_server_once(
    two_hosts,
    smtp_server: SmtpServer,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    a, b = two_hosts
    n = make_notification()

    first = await activity_env.run(
        smtp_notifier(smtp_server.host, smtp_server.port, a).send_notification, n
    )
    second = await activity_env.run(
        smtp_notifier(smtp_server.host, smtp_server.port, b).send_notification, n
    )

    assert (first.duplicate, second.duplicate) == (False, True)
    assert len(smtp_server.received(n.idempotency_key)) == 1


async def test_a_send_cancelled_mid_delivery_holds_its_claim_until_it_is_recorded(
    two_hosts, make_notification: MakeNotification
) -> None:
    """The issue's duplicate: an attempt times out while the mail server is slow, and the retry
    lands on another host. The timed-out send still completes; the retry must wait for it."""
    a, b = two_hosts
    n = make_notification()
    with stalling_smtp_server() as (port, mail):
        mail.gate.clear()  # the mail server stalls every delivery before accepting it
        slow_env = ActivityEnvironment()
        slow = asyncio.create_task(
            slow_env.run(smtp_notifier("127.0.0.1", port, a).send_notification, n)
        )
        await asyncio.wait_for(asyncio.to_thread(mail.stalled.wait), 30)
        slow_env.cancel()  # what the worker does when the attempt's timeout passes

        retry = smtp_notifier("127.0.0.1", port, b)
        with pytest.raises(NotificationInProgress):
            await ActivityEnvironment().run(retry.send_notification, n)

        mail.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(slow, 30)  # cancelled, but only after sending and recording
        again = await ActivityEnvironment().run(retry.send_notification, n)

        assert again.duplicate is True
        assert [r.key for r in mail.received] == [n.idempotency_key]


async def test_a_killed_process_lets_go_of_its_claim(ledger_url: str) -> None:
    key = "renewal-northwind-2027/closure/contract-v3"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, ledger_url, key],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.to_thread(holder.stdout.readline) == "held\n"
        ledger = PostgresLedger(ledger_url)
        with pytest.raises(NotificationInProgress):
            async with ledger.claim(key):
                pass
        holder.kill()
        await asyncio.to_thread(holder.wait)
        # PostgreSQL ends the dead session's transaction as soon as its socket closes.
        for _ in range(100):
            try:
                async with ledger.claim(key) as claim:
                    assert claim.entry is None  # the dead holder recorded nothing
                    break
            except NotificationInProgress:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the killed holder's claim was never let go")
        await ledger.close()
    finally:
        holder.kill()
        holder.wait()


HOLDER_SCRIPT = """
import asyncio, sys
from activities.ledger_postgres import PostgresLedger

async def main():
    async with PostgresLedger(sys.argv[1]).claim(sys.argv[2]):
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_database_that_is_down_fails_the_send_retryably_and_recovers(
    make_notification: MakeNotification,
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await asyncio.to_thread(start_server)  # its own: this test stops it
    try:
        url = await asyncio.to_thread(server.create_database)
        ledger = PostgresLedger(url, timeout=1.0)
        sender = smtp_notifier(smtp_server.host, smtp_server.port, ledger)
        first = make_notification()
        await ActivityEnvironment().run(sender.send_notification, first)

        await asyncio.to_thread(server.stop)
        down = make_notification()
        with pytest.raises(LedgerUnavailable, match="cannot be reached"):
            await ActivityEnvironment().run(sender.send_notification, down)
        assert smtp_server.received(down.idempotency_key) == []  # no claim, no send

        await asyncio.to_thread(server.start)
        back = await until_sent(sender, down)
        again = await until_sent(sender, first)

        assert (back.duplicate, again.duplicate) == (False, True)
        assert len(smtp_server.received(down.idempotency_key)) == 1
        assert len(smtp_server.received(first.idempotency_key)) == 1
        await ledger.close()
    finally:
        await asyncio.to_thread(remove, server)


async def until_sent(sender: Notifier, n: Notification, attempts: int = 20) -> Delivery:
    """Send as Temporal's retries would: again after each retryable ``LedgerUnavailable`` (the
    pool reconnects in the background once the server is back)."""
    for _ in range(attempts - 1):
        try:
            return await ActivityEnvironment().run(sender.send_notification, n)
        except LedgerUnavailable:
            continue
    return await ActivityEnvironment().run(sender.send_notification, n)


async def test_the_tables_have_one_row_per_key(ledger_url: str) -> None:
    ledger = PostgresLedger(ledger_url)
    async with ledger.claim("k/1") as claim:
        await claim.record(("smtp",), False)
        await claim.record(("smtp", "outbox"), True)
    await ledger.close()

    with psycopg.connect(ledger_url) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, channels, complete FROM fitnest_sent_notifications"
        ).fetchall()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO fitnest_notification_claims VALUES ('k/1', NULL, NULL)")
    assert rows == [("k/1", ["smtp", "outbox"], True)]


def test_the_ledger_url_selects_postgresql_and_its_absence_the_folder(tmp_path: Path) -> None:
    base = {"_env_file": None, "ledger_dir": tmp_path / "ledger"}
    shared = open_ledger(
        Settings(**base, ledger_url="postgresql://fitnest@db.internal:5433/ledger")  # type: ignore[arg-type]
    )
    local = open_ledger(Settings(**base))  # type: ignore[arg-type]

    assert isinstance(shared, PostgresLedger)
    assert shared.describe() == "postgresql db.internal:5433/ledger as fitnest"
    assert isinstance(local, SentLedger) and local.directory == tmp_path / "ledger"
