"""Where notifications go: an SMTP server, and an outbox directory of ``.eml`` files.

Both render the same message (:func:`render`), with a Message-ID derived from the idempotency key:
a receiving system that sees the same Message-ID twice can drop the copy. The
:class:`~activities.notifications.Notifier` logs deliveries; a channel logs only what the notifier
cannot see, never a subject, a body or an address.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from activities.durable import key_digest, write_atomically
from activities.errors import NotificationDeferred, NotificationRejected, SmtpMisconfigured

if TYPE_CHECKING:
    from activities.notifications import Notification

#: Header carrying the idempotency key, for receivers and for people reading a message's source.
KEY_HEADER = "X-Fitnest-Idempotency-Key"

_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})")


def message_id(key: str, sender: str) -> str:
    """The Message-ID of every message sent under ``key``: the key's hash at the sender's domain."""
    domain = sender.rpartition("@")[2] or "fitnest"
    return f"<{key_digest(key)[:40]}@{domain}>"


def render(n: Notification, sender: str) -> EmailMessage:
    """The notification as a plain-text e-mail."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(n.to)
    msg["Subject"] = n.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(n.idempotency_key, sender)
    msg[KEY_HEADER] = n.idempotency_key
    msg["X-Fitnest-Kind"] = n.kind
    msg.set_content(n.body)
    return msg


class SmtpChannel:
    """Sends through an SMTP server with :mod:`smtplib`, in a thread to keep the worker's loop free.

    Replies are sorted into what retrying can and cannot fix: a 5xx refusal of the recipients or of
    the message is :class:`NotificationRejected` (permanent); a 4xx is :class:`NotificationDeferred`
    and a network error stays what it is (both retried); a refusal of our login, sender or STARTTLS
    is :class:`SmtpMisconfigured` (retried, so that fixing the settings delivers the backlog).
    Error messages carry reply codes, never the server's text, which may quote the message.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Configure the server; ``timeout`` bounds each network operation, in seconds."""
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.timeout = starttls, timeout
        self._username, self._password = username, password

    def __repr__(self) -> str:  # no password, ever
        return f"SmtpChannel({self.host}:{self.port}, starttls={self.starttls})"

    async def deliver(self, n: Notification) -> None:
        """Send ``n`` to all its recipients in one SMTP transaction."""
        msg = render(n, self.sender)
        refused = await asyncio.to_thread(self._send, msg, list(n.to))
        if refused:
            # Some recipients have it: sending again would duplicate it for them, so the
            # notification counts as delivered and the refusals are left for an operator.
            structlog.get_logger(__name__).warning(
                "notification.recipients_refused",
                negotiation_id=n.negotiation_id,
                kind=n.kind,
                key_hash=key_digest(n.idempotency_key)[:16],
                channel=self.name,
                refused=len(refused),
                codes=sorted({_code(c, r) for c, r in refused.values()}),
            )

    def _send(self, msg: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        """Send ``msg``; the recipients refused while others accepted it, by address."""
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                self._open_session(smtp)
                return smtp.send_message(msg, from_addr=self.sender, to_addrs=recipients)
            finally:
                # Not ``with smtplib.SMTP(...)``: its exit raises when QUIT is answered oddly, and
                # by then the message was accepted; raising would make the retry send it again.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
                smtp.close()
        except smtplib.SMTPException as err:
            raise _classified(err) from None

    def _open_session(self, smtp: smtplib.SMTP) -> None:
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if self._username:
            smtp.login(self._username, self._password or "")


def _classified(err: smtplib.SMTPException) -> Exception:
    """The typed error for an SMTP failure: permanent, deferred, or ours to fix."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        replies = list(err.recipients.values())
        codes = ", ".join(sorted({_code(c, r) for c, r in replies}))
        if all(c >= 500 for c, _ in replies):
            return NotificationRejected(
                f"SMTP server refused all {len(replies)} recipient(s) ({codes})"
            )
        return NotificationDeferred(f"SMTP server deferred the recipients ({codes})")
    if isinstance(err, smtplib.SMTPSenderRefused | smtplib.SMTPAuthenticationError):
        return SmtpMisconfigured(
            f"SMTP server refused our sender or login ({_code(err.smtp_code, err.smtp_error)})"
        )
    if isinstance(err, smtplib.SMTPNotSupportedError):
        return SmtpMisconfigured(
            "SMTP server does not support what the settings ask for (STARTTLS or AUTH)"
        )
    if isinstance(err, smtplib.SMTPDataError):
        code = _code(err.smtp_code, err.smtp_error)
        if err.smtp_code >= 500:
            return NotificationRejected(f"SMTP server refused the message ({code})")
        return NotificationDeferred(f"SMTP server deferred the message ({code})")
    if isinstance(err, smtplib.SMTPResponseException):
        return NotificationDeferred(f"SMTP session failed ({_code(err.smtp_code, err.smtp_error)})")
    return NotificationDeferred(f"SMTP session failed ({type(err).__name__})")


def _code(code: int, reply: bytes | str) -> str:
    """``550 5.1.1``: the reply code and enhanced status code, without the server's text."""
    raw = reply.encode("utf-8", "replace") if isinstance(reply, str) else reply
    found = _ENHANCED_STATUS.match(raw or b"")
    return f"{code} {found.group(1).decode()}" if found else str(code)


class OutboxChannel:
    """Writes each notification as one ``.eml`` file, named by the key's hash, written atomically.

    For development and demos (open the files in a mail client), and as an audit copy next to SMTP.
    A file that already exists is kept as it is: the first delivery wins.
    """

    name = "outbox"

    def __init__(self, directory: Path, sender: str = "fitnest@localhost") -> None:
        """Write into ``directory`` (created now); ``sender`` fills From and the Message-ID."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sender = sender

    def path_for(self, key: str) -> Path:
        """The file a notification with idempotency key ``key`` is written to."""
        return self.directory / f"{key_digest(key)}.eml"

    async def deliver(self, n: Notification) -> None:
        """Write ``n`` unless its file exists already."""
        path = self.path_for(n.idempotency_key)
        if path.exists():
            return
        data = render(n, self.sender).as_bytes()
        await asyncio.to_thread(write_atomically, path, data)
