"""The outbox: one readable .eml file per idempotency key, written atomically."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.channels import KEY_HEADER, OutboxChannel, message_id
from activities.durable import key_digest
from activities.ledger import SentLedger
from activities.notifications import Notification, Notifier
from tests.activities.smtp_test_server import SENDER

MakeNotification = Callable[..., Notification]


def outbox_notifier(tmp_path: Path) -> Notifier:
    return Notifier(
        [OutboxChannel(tmp_path / "outbox", sender=SENDER)], SentLedger(tmp_path / "ledger")
    )


async def test_outbox_writes_one_readable_eml_per_key(
    tmp_path: Path, activity_env: ActivityEnvironment, make_notification: MakeNotification
) -> None:
    first, second = (
        make_notification(),
        make_notification(kind="role_card", subject="Your role card"),
    )
    sender = outbox_notifier(tmp_path)

    for n in (first, second, first):
        await activity_env.run(sender.send_notification, n)

    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == sorted(
        f"{key_digest(n.idempotency_key)}.eml" for n in (first, second)
    )
    path = tmp_path / "outbox" / f"{key_digest(first.idempotency_key)}.eml"
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["From"] == SENDER
    assert msg["To"] == "ana@fitnest.example, lee@fitnest.example"
    assert msg["Subject"] == first.subject
    assert msg["Message-ID"] == message_id(first.idempotency_key, SENDER)
    assert msg[KEY_HEADER] == first.idempotency_key
    assert msg.get_content() == first.body  # type: ignore[attr-defined]


async def test_outbox_leaves_no_temporary_files_and_keeps_the_first_copy(
    tmp_path: Path, make_notification: MakeNotification
) -> None:
    outbox = OutboxChannel(tmp_path)
    n = make_notification()

    await outbox.deliver(n)
    written = outbox.path_for(n.idempotency_key).read_bytes()
    await outbox.deliver(n.model_copy(update={"body": "a different body"}))

    assert [p.name for p in tmp_path.iterdir()] == [outbox.path_for(n.idempotency_key).name]
    assert outbox.path_for(n.idempotency_key).read_bytes() == written


async def test_ledger_marker_is_written_once_delivered(
    tmp_path: Path, activity_env: ActivityEnvironment, make_notification: MakeNotification
) -> None:
    n = make_notification()
    await activity_env.run(outbox_notifier(tmp_path).send_notification, n)

    entry = SentLedger(tmp_path / "ledger").entry(n.idempotency_key)

    assert entry is not None and entry.complete and entry.channels == ("outbox",)
    names = sorted(p.name for p in (tmp_path / "ledger").iterdir())
    assert names == [f"{key_digest(n.idempotency_key)}.json"]  # lock released and removed, no tmp
