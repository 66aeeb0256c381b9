"""A real SMTP server for tests (aiosmtpd), whose replies depend on the recipient's domain.

* ``...@refused.example``  -> ``550 5.1.1`` at RCPT (permanent refusal)
* ``...@busy.example``     -> ``451 4.3.2`` at RCPT (try again later)
* ``...@spamtrap.example`` -> accepted at RCPT, ``554 5.7.1`` at DATA (message refused)
* anything else            -> accepted and recorded

Tests choose behaviour through addresses, so one server serves the whole session.
Not a test module: the fixtures in ``conftest.py`` start it; tests import its helpers.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from activities.channels import KEY_HEADER

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

    @property
    def key(self) -> str:
        """The idempotency key, unfolded: a long key arrives folded onto a continuation line,
        which leaves the whitespace of the fold in front of the value."""
        return str(self.message[KEY_HEADER]).strip()


@dataclass
class MailHandler:
    """aiosmtpd handler that records accepted messages and refuses by recipient domain."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        reply = _RCPT_REPLIES.get(address.rpartition("@")[2])
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(a.endswith("@spamtrap.example") for a in envelope.rcpt_tos):
            return "554 5.7.1 Message refused"
        # SMTP carries CRLF line ends; normalise them, as a mail client would.
        content = envelope.content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
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
        return [r for r in self.handler.received if r.key == key]
