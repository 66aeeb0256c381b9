"""Notifications to people: role cards, offers, decision requests, hand-offs, outcomes.

``send_notification`` is idempotent by key: the ledger (:mod:`activities.ledger`, files on one
machine or PostgreSQL for a fleet) remembers each channel that delivered a key, so a retried
activity or a worker on another host skips what went out already and answers ``duplicate=True``
once everything has. Logs name the negotiation, the
kind, the key's hash and the channel; never the subject, the body or the addresses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from temporalio import activity

from activities.channels import OutboxChannel, SmtpChannel
from activities.durable import key_digest
from activities.errors import (
    InvalidNotification,
    NotificationInProgress,
    NotificationsNotConfigured,
    PermanentFailure,
    activity_edge,
    parse_input,
)
from activities.ledger import Ledger, SentLedger, open_ledger
from activities.log import logger
from negotiation.models import Email, Identifier

if TYPE_CHECKING:
    from workers.settings import Settings

__all__ = [
    "Channel",
    "Delivery",
    "Ledger",
    "Notification",
    "Notifier",
    "OutboxChannel",
    "SentLedger",
    "SmtpChannel",
]


def _one_line(value: str) -> str:
    # A line break in a header would let the text forge headers; the value itself is not quoted
    # back, because subjects may name deal terms.
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line")
    return value


class Notification(BaseModel):
    """One message to people entitled to see it, sent at most once per ``idempotency_key``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: str = Field(
        pattern=r"^[\x21-\x7e]{1,256}$",
        description="Unique per message, e.g. '<negotiation_id>/opening/offer-v1'; the same key is "
        "never sent twice. Printable ASCII without spaces (it travels in a mail header).",
    )
    negotiation_id: Identifier = Field(description="The negotiation (workflow id) it belongs to.")
    kind: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="What it is: 'role_card', 'offer', 'decision_request', 'handoff', 'outcome'...",
    )
    to: tuple[Email, ...] = Field(
        min_length=1, max_length=100, description="Recipient e-mail addresses."
    )
    subject: Annotated[str, AfterValidator(_one_line)] = Field(
        min_length=1, max_length=500, description="Subject line; confidential, never logged."
    )
    body: str = Field(description="Plain-text body; may carry deal terms, so never logged.")


class Delivery(BaseModel):
    """What ``send_notification`` did."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str = Field(description="The notification's key.")
    channels: tuple[str, ...] = Field(description="Channels it went to, e.g. ('smtp', 'outbox').")
    duplicate: bool = Field(
        description="True when the key had been delivered before: nothing was sent again."
    )


class NotificationBatch(BaseModel):
    """Several notifications sent by one activity, each at most once under its own key (the role
    cards of preparation: one activity instead of one per participant)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notifications: tuple[Notification, ...] = Field(min_length=1, max_length=100)


class BatchDelivery(BaseModel):
    """What ``send_notifications`` did: each key delivered (or found delivered before), and the
    error type of each one refused for good."""

    model_config = ConfigDict(frozen=True)

    delivered: tuple[Delivery, ...] = ()
    refused: dict[str, str] = Field(
        default_factory=dict, description="Idempotency key -> the permanent failure's type."
    )


class Channel(Protocol):
    """A way to deliver a notification. ``deliver`` raises a :class:`PermanentFailure` for what
    retrying cannot fix, and anything else for what it might."""

    name: str

    async def deliver(self, n: Notification) -> None:
        """Deliver ``n`` once."""
        ...


#: Seconds between heartbeats while a send is in progress (NOTIFY's heartbeat timeout is 10 s).
HEARTBEAT_SECONDS = 2.0


async def _alive_while(work: Coroutine[Any, Any, Delivery]) -> Delivery:
    """Run ``work``, heartbeating meanwhile when inside an activity: a worker that dies mid-send
    is then noticed at the heartbeat timeout, not at the end of the attempt's timeout.

    A cancelled activity (its attempt timed out, or the worker is shutting down) does not cancel
    ``work``: a mail session in flight runs on in its thread whatever the coroutine does, and
    letting go of the claim before it ends would let a retry on another worker send the same
    message. ``work`` finishes (each SMTP step is bounded by its timeout), records what it
    delivered and lets go of its claim; then the cancellation goes on.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_SECONDS)
            if done:
                return task.result()
            if activity.in_activity():
                activity.heartbeat()
    except asyncio.CancelledError:
        if not task.done():
            logger(__name__).info("notification.finishing_before_cancel")
            # Shielded: a second cancellation stops the wait, never the send.
            await asyncio.wait({asyncio.shield(task)})
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller sees
        raise


class Notifier:
    """Sends notifications through its channels, at most once per key, recorded in the ledger."""

    def __init__(self, channels: Sequence[Channel], ledger: Ledger) -> None:
        """Deliver through ``channels`` in order, remembering deliveries in ``ledger``."""
        names = [c.name for c in channels]
        if not names or len(set(names)) != len(names):
            raise ValueError(
                f"a notifier needs one or more channels with distinct names, got {names}"
            )
        self.channels = tuple(channels)
        self.ledger = ledger

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifier:
        """SMTP when ``smtp_host`` is set, the outbox when ``outbox_dir`` is; both when both are."""
        channels: list[Channel] = []
        if settings.smtp_host:
            channels.append(
                SmtpChannel(
                    settings.smtp_host,
                    settings.smtp_port,
                    settings.smtp_sender,
                    starttls=settings.smtp_starttls,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    timeout=settings.smtp_timeout_seconds,
                )
            )
        if settings.outbox_dir is not None:
            channels.append(OutboxChannel(settings.outbox_dir, sender=settings.smtp_sender))
        if not channels:
            raise NotificationsNotConfigured(
                "no notification channel is configured: set FITNEST_SMTP_HOST to send mail "
                "and/or FITNEST_OUTBOX_DIR to write .eml files"
            )
        return cls(channels, open_ledger(settings))

    @activity.defn(name="send_notification")
    async def send_notification(self, n: Notification) -> Delivery:
        """Deliver ``n`` through every channel that has not delivered its key yet.

        Raises a non-retryable ``ApplicationError`` of type ``InvalidNotification`` or
        ``NotificationRejected``; other failures are retried by Temporal.
        """
        with activity_edge():
            n = parse_input(Notification, n, InvalidNotification)
            return await _alive_while(self._send(n))

    async def _send(self, n: Notification) -> Delivery:
        key = n.idempotency_key
        log = logger(
            __name__, negotiation_id=n.negotiation_id, kind=n.kind, key_hash=key_digest(key)[:16]
        )
        try:
            return await self._send_claimed(n, log)
        except NotificationInProgress:
            log.info("notification.in_progress")  # the retry finds it sent (or sends it)
            raise

    async def _send_claimed(self, n: Notification, log: Any) -> Delivery:
        key = n.idempotency_key
        async with self.ledger.claim(key) as claim:
            entry = claim.entry
            done = entry.channels if entry is not None else ()
            pending = [c for c in self.channels if c.name not in done]
            if entry is not None and (entry.complete or not pending):
                # Delivered before. A channel configured since then does not get it either.
                if not entry.complete:
                    await claim.record(done, True)
                log.info("notification.duplicate", channels=done)
                return Delivery(idempotency_key=key, channels=done, duplicate=True)
            for channel in pending:
                await self._deliver(channel, n, log)
                done = (*done, channel.name)
                # Recorded after each channel, so a retry resends only where it failed.
                await claim.record(done, channel is pending[-1])
        log.info("notification.sent", channels=done)
        return Delivery(idempotency_key=key, channels=done, duplicate=False)

    @staticmethod
    async def _deliver(channel: Channel, n: Notification, log: Any) -> None:
        bound = log.bind(channel=channel.name)
        try:
            await channel.deliver(n)
        except PermanentFailure as err:
            bound.warning("notification.rejected", error_type=err.error_type, error=str(err))
            raise
        except Exception as err:
            # Our own messages name codes only; a network error's text names host and port.
            bound.warning("notification.deferred", error_type=type(err).__name__, error=str(err))
            raise
        bound.info("notification.channel_delivered")

    @activity.defn(name="send_notifications")
    async def send_notifications(self, batch: NotificationBatch) -> BatchDelivery:
        """Deliver every notification of ``batch``, each through the channels that have not
        delivered its key yet. One refused for good is reported, not raised, so the others still
        go; any other failure is raised after the rest were tried, and Temporal retries the
        batch (the ledger skips what was delivered)."""
        with activity_edge():
            batch = parse_input(NotificationBatch, batch, InvalidNotification)
            delivered: list[Delivery] = []
            refused: dict[str, str] = {}
            retry: Exception | None = None
            for n in batch.notifications:
                try:
                    delivered.append(await _alive_while(self._send(n)))
                except PermanentFailure as err:
                    refused[n.idempotency_key] = err.error_type
                except Exception as err:
                    retry = retry or err
            if retry is not None:
                raise retry
            return BatchDelivery(delivered=tuple(delivered), refused=refused)
