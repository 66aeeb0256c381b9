"""Structured logging for activities.

Every event carries the activity attempt and workflow id when it runs inside an activity, so an
operator can follow retries. Callers add identifiers (negotiation id, kind, key hash, channel):
never subjects, bodies, terms or amounts, which are confidential.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity


def logger(name: str, **fields: Any) -> Any:
    """A structlog logger bound to ``fields`` and, inside an activity, to its attempt."""
    log = structlog.get_logger(name)
    if activity.in_activity():
        info = activity.info()
        fields = {"workflow_id": info.workflow_id, "attempt": info.attempt, **fields}
    return log.bind(**fields)
