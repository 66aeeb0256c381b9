"""Fixtures for the activity tests: a real SMTP server (aiosmtpd) and Temporal's ActivityEnvironment.

The SMTP server runs for the whole session on a free local port. Its handler behaves by recipient
domain, so tests pick behaviour through addresses instead of reconfiguring a shared server:

* ``...@refused.example``  -> ``550 5.1.1`` at RCPT (permanent refusal)
* ``...@busy.example``     -> ``451 4.3.2`` at RCPT (try again later)
* ``...@spamtrap.example`` -> accepted at RCPT, ``554 5.7.1`` at DATA (message refused)
* anything else            -> accepted and recorded
"""

from __future__ import annotations

import email
import email.policy
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.channels import KEY_HEADER
from activities.notifications import Notification

SENDER = "fitnest@fitnest.example"

_RCPT_REPLIES = {
    "refused.example": "550 5.1.1 No such user here",
    "busy.example": "451 4.3.2 Try again later",
}


@dataclass
class Received:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class MailHandler:
    """aiosmtpd handler that records accepted messages and refuses by recipient domain."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = _RCPT_REPLIES.get(address.rpartition("@")[2])
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(a.endswith("@spamtrap.example") for a in envelope.rcpt_tos):
            return "554 5.7.1 Message refused"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """Where the test SMTP server listens, and what it received."""

    host: str
    port: int
    handler: MailHandler

    def received(self, key: str) -> list[Received]:
        """Messages received under idempotency key ``key``."""
        return [r for r in self.handler.received if r.message[KEY_HEADER] == key]


def free_port() -> int:
    """A local TCP port nobody listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free local port, for the whole session."""
    handler = MailHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def activity_env() -> ActivityEnvironment:
    """Temporal's activity test environment: ``activity.info()`` and friends work inside it."""
    return ActivityEnvironment()


@pytest.fixture
def make_notification() -> Callable[..., Notification]:
    """Build a notification with a fresh idempotency key; keyword arguments override fields."""

    def make(**overrides: Any) -> Notification:
        fields: dict[str, Any] = {
            "idempotency_key": f"renewal-northwind-2027/opening/offer-{uuid.uuid4().hex[:12]}",
            "negotiation_id": "renewal-northwind-2027",
            "kind": "offer",
            "to": ("ana@fitnest.example", "lee@fitnest.example"),
            "subject": "Opening offer (version 1)",
            "body": "Terms version 1:\ntotal contract value 60000.00 EUR\n",
        }
        fields.update(overrides)
        return Notification(**fields)

    return make
