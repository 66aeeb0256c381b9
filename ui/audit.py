"""Every decision attempt made through the UI, accepted or refused, as one JSON line; and every
sign-in and every API key the UI checks or refuses (``kind`` tells them apart).

A decision the UI refuses at its edge (outside the approver's role or authority, self-approval,
someone else's negotiation) never reaches the workflow, so its history cannot tell of it: this
append-only file does. Accepted decisions are logged too, so one file answers "who tried what".
No deal terms and no comments are written (a comment may quote a price): the workflow keeps those.
Access attempts carry the name or key id and the client address, never a password or a secret.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ui.directory import Approver


class AttemptOutcome(StrEnum):
    """What became of a decision attempt."""

    ACCEPTED = "accepted"
    REFUSED_BY_UI = "refused_by_ui"
    REFUSED_BY_WORKFLOW = "refused_by_workflow"
    FAILED = "failed"


class DecisionAttempt(BaseModel):
    """One decision someone tried to take, and what became of it."""

    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    kind: Literal["decision"] = "decision"
    negotiation_id: str
    request_id: str
    user: str = Field(description="Who was signed in.")
    participant: str = Field(description="Participant name they decided as.")
    role: str = Field(description="Their role in the directory.")
    authority_limit: Decimal = Field(description="Their authority in the directory.")
    verdict: str
    terms_version: int | None = None
    message_id: str
    outcome: AttemptOutcome
    reason: str = Field(default="", description="Why it was refused, in plain words.")


def attempt_by(
    approver: Approver,
    *,
    negotiation_id: str,
    request_id: str,
    verdict: str,
    message_id: str,
    outcome: AttemptOutcome,
    reason: str = "",
    terms_version: int | None = None,
) -> DecisionAttempt:
    """An attempt by the signed-in ``approver``, as the directory knows them."""
    return DecisionAttempt(
        negotiation_id=negotiation_id,
        request_id=request_id,
        user=approver.user,
        participant=approver.participant,
        role=approver.role.value,
        authority_limit=approver.authority_limit,
        verdict=verdict,
        terms_version=terms_version,
        message_id=message_id,
        outcome=outcome,
        reason=reason,
    )


class AccessOutcome(StrEnum):
    """What became of a sign-in or an API key."""

    ACCEPTED = "accepted"
    WRONG_CREDENTIALS = "wrong_credentials"
    THROTTLED = "throttled"


#: The longest name kept of what was typed (someone may type a password in the name field).
_NAME_CHARS = 64


class AccessAttempt(BaseModel):
    """One sign-in or API-key attempt, and what became of it."""

    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    kind: Literal["sign_in", "api_key"]
    user: str = Field(description="The user name as typed, or the API key's id.")
    address: str = Field(description="The client address the attempt came from.")
    outcome: AccessOutcome
    reason: str = Field(default="", description="Why it was refused, in plain words.")


def access_attempt(
    kind: Literal["sign_in", "api_key"],
    user: str,
    address: str,
    outcome: AccessOutcome,
    reason: str = "",
) -> AccessAttempt:
    """An access attempt, the name cut to a sane length."""
    return AccessAttempt(
        kind=kind, user=user[:_NAME_CHARS], address=address, outcome=outcome, reason=reason
    )


class AuditLog:
    """An append-only JSON-lines file of decision and access attempts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    async def append(self, attempt: DecisionAttempt | AccessAttempt) -> None:
        """Write one attempt; lines from concurrent requests never interleave."""
        line = attempt.model_dump_json() + "\n"
        async with self._lock:
            await asyncio.to_thread(self._write, line)

    def _write(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)

    def for_negotiation(self, negotiation_id: str) -> list[DecisionAttempt]:
        """The attempts on one negotiation, oldest first."""
        if not self.path.exists():
            return []
        found = []
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash; the rest stays readable
                if record.get("negotiation_id") == negotiation_id:
                    found.append(DecisionAttempt.model_validate(record))
        return found
