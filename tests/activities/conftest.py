"""Fixtures for the activity tests: a real SMTP server and Temporal's ActivityEnvironment."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.notifications import Notification
from tests.activities.smtp_test_server import MailHandler, SmtpServer
from workers.devserver import free_port


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
