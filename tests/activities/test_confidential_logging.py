"""Deal terms are confidential: no subject, body or amount reaches a log or a failure message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.channels import OutboxChannel, SmtpChannel
from activities.ledger import SentLedger
from activities.notifications import Notification, Notifier
from activities.reviews import ReviewInput, finance_approval, legal_review
from negotiation.models import DealType
from negotiation.policy import Policy
from negotiation.terms import Terms
from tests.activities.smtp_test_server import SENDER, SmtpServer

SECRET_SUBJECT = "Walk-away for Contoso: 4,321,987.65 EUR"
SECRET_BODY = "Our floor is 4321987.65 EUR and 47 payment days. Do not forward."
SECRETS = ("4,321,987.65", "4321987.65", "Walk-away for Contoso", "Do not forward")


async def test_notification_logs_never_contain_subject_or_body(
    smtp_server: SmtpServer,
    tmp_path: Path,
    activity_env: ActivityEnvironment,
    make_notification: Callable[..., Notification],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp = SmtpChannel(smtp_server.host, smtp_server.port, SENDER)
    sender = Notifier([smtp, OutboxChannel(tmp_path / "outbox")], SentLedger(tmp_path / "ledger"))
    delivered = make_notification(subject=SECRET_SUBJECT, body=SECRET_BODY)
    partly = make_notification(
        subject=SECRET_SUBJECT, body=SECRET_BODY, to=("ana@fitnest.example", "x@refused.example")
    )
    refused = make_notification(subject=SECRET_SUBJECT, body=SECRET_BODY, to=("x@refused.example",))
    deferred = make_notification(subject=SECRET_SUBJECT, body=SECRET_BODY, to=("x@busy.example",))
    failures: list[BaseException] = []

    with capture_logs() as events:
        await activity_env.run(sender.send_notification, delivered)
        await activity_env.run(sender.send_notification, delivered)  # duplicate
        await activity_env.run(sender.send_notification, partly)
        for n in (refused, deferred):
            try:
                await activity_env.run(sender.send_notification, n)
            except Exception as err:
                failures.append(err)
        bad = delivered.model_dump() | {"subject": SECRET_SUBJECT + "\nBcc: all@example.com"}
        try:
            await activity_env.run(sender.send_notification, bad)  # type: ignore[arg-type]
        except ApplicationError as err:
            failures.append(err)

    names = [e["event"] for e in events]
    for expected in (
        "notification.sent",
        "notification.duplicate",
        "notification.recipients_refused",
        "notification.rejected",
        "notification.deferred",
    ):
        assert expected in names  # the capture saw the events, so its silence below means something
    assert all(e.get("negotiation_id") == "renewal-northwind-2027" for e in events)
    assert all("key_hash" in e and "kind" in e for e in events)
    assert len(failures) == 3
    # Our records only: the test SMTP server (aiosmtpd's "mail.log") logs the session it received.
    ours = [caplog.handler.format(r) for r in caplog.records if not r.name.startswith("mail.log")]
    everything = "\n".join([repr(events), *ours, *capsys.readouterr(), *map(str, failures)])
    for secret in SECRETS:
        assert secret not in everything


async def test_review_logs_never_contain_amounts(activity_env: ActivityEnvironment) -> None:
    inp = ReviewInput(
        negotiation_id="sale-contoso-2027",
        terms_version=4,
        terms=Terms(total_contract_value=Decimal("4321987.65"), discount_pct=Decimal("33.33")),
        deal_type=DealType.ENTERPRISE_SALE,
        policy=Policy(),
    )

    with capture_logs() as events:
        finance = await activity_env.run(finance_approval, inp)
        await activity_env.run(legal_review, inp)

    assert [e["event"] for e in events] == ["review.finance.completed", "review.legal.completed"]
    logged = repr(events)
    for amount in ("4321987.65", "33.33", str(finance.payment_cost), str(finance.margin_pct)):
        assert amount not in logged
