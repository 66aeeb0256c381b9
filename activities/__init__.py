"""The musicians: legal review, finance approval, the policy source and notifications.

Adapters to the outside world, idempotent, with typed errors (:mod:`activities.errors`) and the
options workflows call them with (:mod:`activities.timeouts`).

This package's ``__init__`` imports nothing at module level on purpose: workflow code imports
``activities.timeouts`` and the activity modules, and importing the package must not drag SMTP,
file locking and settings into the workflow sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.settings import Settings


def all_activities(settings: Settings) -> list[Callable[..., Any]]:
    """Every activity a worker hosts, wired to ``settings``.

    Raises ``NotificationsNotConfigured`` when neither SMTP nor an outbox is configured.
    """
    from activities.notifications import Notifier
    from activities.policy_source import PolicySource
    from activities.reviews import finance_approval, legal_review

    notifier = Notifier.from_settings(settings)
    return [
        legal_review,
        finance_approval,
        PolicySource(settings.policy_file).load_policy,
        notifier.send_notification,
        notifier.send_notifications,
    ]
