"""send_notification against a real SMTP server: delivery, idempotency, and how failures surface."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.channels import OutboxChannel, SmtpChannel, message_id
from activities.errors import (
    NotificationDeferred,
    NotificationInProgress,
    NotificationsNotConfigured,
    SmtpMisconfigured,
)
from activities.ledger import SentLedger
from activities.notifications import Delivery, Notification, Notifier
from tests.activities.smtp_test_server import SENDER, SmtpServer
from workers.devserver import free_port
from workers.settings import Settings

MakeNotification = Callable[..., Notification]


def notifier(server: SmtpServer, ledger_dir: Path, **smtp: object) -> Notifier:
    channel = SmtpChannel(server.host, server.port, SENDER, timeout=5.0, **smtp)  # type: ignore[arg-type]
    return Notifier([channel], SentLedger(ledger_dir))


async def test_notification_arrives_with_recipients_subject_body_and_message_id(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification(
        subject="Offer for Northwind — version 1", body="Hello Ana,\nsee the terms.\n"
    )

    delivery = await activity_env.run(notifier(smtp_server, tmp_path).send_notification, n)

    assert delivery == Delivery(
        idempotency_key=n.idempotency_key, channels=("smtp",), duplicate=False
    )
    [got] = smtp_server.received(n.idempotency_key)
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ["ana@fitnest.example", "lee@fitnest.example"]
    assert got.message["To"] == "ana@fitnest.example, lee@fitnest.example"
    assert got.message["Subject"] == "Offer for Northwind — version 1"
    assert got.message.get_content() == "Hello Ana,\nsee the terms.\n"
    assert got.message["Message-ID"] == message_id(n.idempotency_key, SENDER)
    assert got.message["Message-ID"].endswith("@fitnest.example>")
    assert got.key == n.idempotency_key


async def test_same_key_twice_is_delivered_once_and_second_is_a_duplicate(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification()
    sender = notifier(smtp_server, tmp_path)

    first = await activity_env.run(sender.send_notification, n)
    second = await activity_env.run(sender.send_notification, n)

    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.channels == ("smtp",)
    assert len(smtp_server.received(n.idempotency_key)) == 1


async def test_worker_restart_over_same_ledger_does_not_send_again(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification()
    await activity_env.run(notifier(smtp_server, tmp_path).send_notification, n)

    restarted = notifier(smtp_server, tmp_path)  # new channel, new ledger object, same directory
    again = await activity_env.run(restarted.send_notification, n)

    assert again.duplicate is True
    assert len(smtp_server.received(n.idempotency_key)) == 1


async def test_message_id_is_the_same_for_the_same_key_so_receivers_can_dedupe(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification()
    # Two separate ledgers: the ledger cannot help, the Message-ID must.
    await activity_env.run(notifier(smtp_server, tmp_path / "a").send_notification, n)
    await activity_env.run(notifier(smtp_server, tmp_path / "b").send_notification, n)

    ids = {r.message["Message-ID"] for r in smtp_server.received(n.idempotency_key)}
    assert ids == {message_id(n.idempotency_key, SENDER)}


async def test_concurrent_attempts_for_one_key_send_once(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification()
    sender = notifier(smtp_server, tmp_path)

    results = await asyncio.gather(
        activity_env.run(sender.send_notification, n),
        activity_env.run(sender.send_notification, n),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["Delivery", "NotificationInProgress"]
    assert len(smtp_server.received(n.idempotency_key)) == 1
    retried = await activity_env.run(sender.send_notification, n)  # what Temporal's retry finds
    assert retried.duplicate is True


class FlakyChannel:
    """A second channel that fails the first time, like a full disk that gets cleaned up."""

    name = "audit"

    def __init__(self) -> None:
        self.calls = 0

    async def deliver(self, n: Notification) -> None:
        self.calls += 1
        if self.calls == 1:
            raise OSError("disk full")


async def test_retry_after_a_later_channel_failed_does_not_resend_through_smtp(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification()
    flaky = FlakyChannel()
    sender = Notifier(
        [SmtpChannel(smtp_server.host, smtp_server.port, SENDER), flaky], SentLedger(tmp_path)
    )

    with pytest.raises(OSError, match="disk full"):
        await activity_env.run(sender.send_notification, n)
    retried = await activity_env.run(sender.send_notification, n)

    assert retried == Delivery(
        idempotency_key=n.idempotency_key, channels=("smtp", "audit"), duplicate=False
    )
    assert flaky.calls == 2
    assert len(smtp_server.received(n.idempotency_key)) == 1


@pytest.mark.parametrize(
    ("recipient", "code"),
    [("nobody@refused.example", "550 5.1.1"), ("trap@spamtrap.example", "554 5.7.1")],
    ids=["recipient-refused", "message-refused"],
)
async def test_permanent_smtp_refusal_is_non_retryable_notification_rejected(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
    recipient: str,
    code: str,
) -> None:
    n = make_notification(to=(recipient,))

    with pytest.raises(ApplicationError) as caught:
        await activity_env.run(notifier(smtp_server, tmp_path).send_notification, n)

    assert caught.value.type == "NotificationRejected"
    assert caught.value.non_retryable is True
    assert code in caught.value.message
    assert "No such user" not in caught.value.message  # the server's text stays out of the history


async def test_temporary_smtp_refusal_is_retryable(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification(to=("ops@busy.example",))
    sender = notifier(smtp_server, tmp_path)

    with pytest.raises(NotificationDeferred, match=r"451 4\.3\.2"):
        await activity_env.run(sender.send_notification, n)
    assert SentLedger(tmp_path).entry(n.idempotency_key) is None  # nothing recorded: retry sends


async def test_some_recipients_refused_counts_as_delivered_to_the_rest(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification(to=("ana@fitnest.example", "nobody@refused.example"))

    delivery = await activity_env.run(notifier(smtp_server, tmp_path).send_notification, n)

    assert delivery.duplicate is False
    [got] = smtp_server.received(n.idempotency_key)
    assert got.rcpt_tos == ["ana@fitnest.example"]


async def test_connection_refused_is_a_plain_retryable_error(
    tmp_path: Path, activity_env: ActivityEnvironment, make_notification: MakeNotification
) -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), SENDER, timeout=2.0)
    sender = Notifier([channel], SentLedger(tmp_path))

    with pytest.raises(ConnectionRefusedError) as caught:
        await activity_env.run(sender.send_notification, make_notification())

    assert not isinstance(caught.value, ApplicationError)  # Temporal retries it


async def test_starttls_the_server_does_not_offer_is_retryable_misconfiguration(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    n = make_notification()

    with pytest.raises(SmtpMisconfigured):
        await activity_env.run(notifier(smtp_server, tmp_path, starttls=True).send_notification, n)
    assert smtp_server.received(n.idempotency_key) == []


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("to", ("not-an-address",), "to.0"),
        ("to", (), "to"),
        ("subject", "Offer\r\nBcc: everyone@example.com", "subject"),
        ("kind", "Offer!", "kind"),
        ("idempotency_key", "has a space", "idempotency_key"),
    ],
)
async def test_invalid_notification_is_non_retryable(
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
    field: str,
    value: object,
    where: str,
) -> None:
    raw = make_notification().model_dump() | {field: value}
    sender = Notifier([OutboxChannel(tmp_path / "outbox")], SentLedger(tmp_path / "ledger"))

    with pytest.raises(ApplicationError) as caught:
        await activity_env.run(sender.send_notification, raw)  # type: ignore[arg-type]

    assert (caught.value.type, caught.value.non_retryable) == ("InvalidNotification", True)
    assert where in caught.value.message
    assert not any((tmp_path / "outbox").iterdir())


async def test_send_notification_is_idempotent_with_a_plain_mapping_too(
    tmp_path: Path, activity_env: ActivityEnvironment, make_notification: MakeNotification
) -> None:
    n = make_notification()
    sender = Notifier([OutboxChannel(tmp_path / "outbox")], SentLedger(tmp_path / "ledger"))

    first = await activity_env.run(sender.send_notification, n.model_dump())  # type: ignore[arg-type]
    second = await activity_env.run(sender.send_notification, n)

    assert (first.duplicate, second.duplicate) == (False, True)


def test_from_settings_builds_smtp_and_outbox_channels_and_ledger(tmp_path: Path) -> None:
    settings = Settings(
        smtp_host="mail.fitnest.example",
        smtp_port=2525,
        smtp_sender=SENDER,
        outbox_dir=tmp_path / "outbox",
        ledger_dir=tmp_path / "ledger",
        _env_file=None,
    )

    built = Notifier.from_settings(settings)

    assert [c.name for c in built.channels] == ["smtp", "outbox"]
    smtp = built.channels[0]
    assert isinstance(smtp, SmtpChannel) and (smtp.host, smtp.port, smtp.sender) == (
        "mail.fitnest.example",
        2525,
        SENDER,
    )
    assert built.ledger.directory == tmp_path / "ledger" and built.ledger.directory.is_dir()


def test_from_settings_without_any_channel_says_what_to_set(tmp_path: Path) -> None:
    # Explicit Nones: the machine's FITNEST_* variables must not decide this test.
    settings = Settings(smtp_host=None, outbox_dir=None, ledger_dir=tmp_path, _env_file=None)

    with pytest.raises(NotificationsNotConfigured, match=r"FITNEST_SMTP_HOST.*FITNEST_OUTBOX_DIR"):
        Notifier.from_settings(settings)


def test_notification_in_progress_is_retryable_by_temporal() -> None:
    # Plain exceptions are retried by Temporal; only ApplicationError(non_retryable=True) stops it.
    assert not issubclass(NotificationInProgress, ApplicationError)
    assert not issubclass(NotificationDeferred, ApplicationError)
