"""send_notifications (the role cards' activity) against a real SMTP server: every card once by
its own key; one refused for good is reported while the others go; a temporary failure is raised
after the rest were tried, and the retry sends only what is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.channels import SmtpChannel
from activities.errors import NotificationDeferred
from activities.ledger import SentLedger
from activities.notifications import Notification, NotificationBatch, Notifier
from tests.activities.smtp_test_server import SENDER, SmtpServer

MakeNotification = Callable[..., Notification]


def _notifier(server: SmtpServer, ledger_dir: Path) -> Notifier:
    return Notifier(
        [SmtpChannel(server.host, server.port, SENDER, timeout=5.0)], SentLedger(ledger_dir)
    )


async def test_every_notification_of_a_batch_goes_once_and_a_repeat_sends_nothing(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    cards = [make_notification(kind="role_card", to=(f"p{i}@fitnest.example",)) for i in range(3)]
    sender = _notifier(smtp_server, tmp_path)
    batch = NotificationBatch(notifications=tuple(cards))

    first = await activity_env.run(sender.send_notifications, batch)
    again = await activity_env.run(sender.send_notifications, batch)

    assert [d.duplicate for d in first.delivered] == [False, False, False]
    assert [d.duplicate for d in again.delivered] == [True, True, True]
    for card in cards:
        assert len(smtp_server.received(card.idempotency_key)) == 1


async def test_a_card_refused_for_good_is_reported_and_the_others_still_go(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    good = make_notification(kind="role_card", to=("ana@fitnest.example",))
    refused = make_notification(kind="role_card", to=("nobody@refused.example",))
    batch = NotificationBatch(notifications=(refused, good))

    delivery = await activity_env.run(_notifier(smtp_server, tmp_path).send_notifications, batch)

    assert delivery.refused == {refused.idempotency_key: "NotificationRejected"}
    assert len(smtp_server.received(good.idempotency_key)) == 1


async def test_a_temporary_failure_is_raised_after_the_rest_and_the_retry_sends_only_it(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: MakeNotification,
) -> None:
    busy = make_notification(kind="role_card", to=("ops@busy.example",))
    good = make_notification(kind="role_card", to=("ana@fitnest.example",))
    sender = _notifier(smtp_server, tmp_path)
    batch = NotificationBatch(notifications=(busy, good))

    with pytest.raises(NotificationDeferred):
        await activity_env.run(sender.send_notifications, batch)
    assert len(smtp_server.received(good.idempotency_key)) == 1  # tried, and sent, meanwhile
    assert SentLedger(tmp_path).entry(busy.idempotency_key) is None

    with pytest.raises(NotificationDeferred):  # still busy: the retry resends nothing else
        await activity_env.run(sender.send_notifications, batch)
    assert len(smtp_server.received(good.idempotency_key)) == 1
