"""Every decision attempt made through the UI, accepted or refused, as one JSON line; and every
sign-in and every API key the UI checks or refuses (``kind`` tells them apart).

A decision the UI refuses at its edge (outside the approver's role or authority, self-approval,
someone else's negotiation) never reaches the workflow, so its history cannot tell of it: this
append-only file does. Accepted decisions are logged too, so one file answers "who tried what".
No deal terms and no comments are written (a comment may quote a price): the workflow keeps those.
Access attempts carry the name or key id and the client address, never a password or a secret.

Every string in a record has a bound (longer ones are cut and marked), so one request writes at
most :data:`MAX_RECORD_BYTES`, however large the fields it posted. The decision attempts on a
negotiation that the UI could read are also appended to a file of that negotiation's own (named
by a hash of its id, in a folder beside the log), so its page reads its trail, not everyone's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from ui.directory import Approver


def _cut_to(limit: int) -> AfterValidator:
    """Keep the first ``limit`` characters of a string and say how many more there were."""

    def cut(value: str) -> str:
        if len(value) <= limit:
            return value
        return f"{value[:limit]}...[{len(value) - limit} more characters cut]"

    return AfterValidator(cut)


#: An id as a client sent it (the workflow takes at most 128 characters).
ClientId = Annotated[str, _cut_to(128)]
#: A short word: a role, a verdict, an address.
Word = Annotated[str, _cut_to(64)]
#: A reason in plain words (it may quote what was sent).
Reason = Annotated[str, _cut_to(500)]


def _version(value: int | None) -> int | None:
    # A number no terms version reaches says nothing more for its thousand digits.
    return value if value is None or 0 <= value <= 10**9 else None


#: A terms version as a client sent it.
ClientVersion = Annotated[int | None, AfterValidator(_version)]

#: The most one record takes, JSON-escaped, whatever was posted (each bounded string at six bytes
#: a character, the worst JSON escape, plus the fixed fields).
MAX_RECORD_BYTES = 8192


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
    negotiation_id: ClientId
    request_id: ClientId
    user: Word = Field(description="Who was signed in.")
    signed_in_as: ClientId = Field(
        default="",
        description="The identity that proved it: `local:<user>`, or the identity provider's "
        "`oidc:<e-mail or subject> (sub <subject> at <issuer>)`.",
    )
    participant: ClientId = Field(description="Participant name they decided as.")
    role: Word = Field(description="Their role in the directory.")
    authority_limit: Decimal = Field(description="Their authority in the directory.")
    verdict: Word
    terms_version: ClientVersion = None
    message_id: ClientId
    outcome: AttemptOutcome
    reason: Reason = Field(default="", description="Why it was refused, in plain words.")


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
    identity = getattr(approver, "signed_in_as", None)
    return DecisionAttempt(
        negotiation_id=negotiation_id,
        request_id=request_id,
        user=approver.user,
        signed_in_as=identity.label if identity is not None else "",
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
    #: A sign-in through the identity provider that did not check (state, code, ID token...).
    REFUSED = "refused"
    #: The provider vouched for someone the directory does not let in.
    NO_ENTRY = "no_entry"


#: The longest name kept of what was typed (someone may type a password in the name field).
_NAME_CHARS = 64


class AccessAttempt(BaseModel):
    """One sign-in or API-key attempt, and what became of it."""

    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    kind: Literal["sign_in", "api_key", "oidc_sign_in"]
    user: Word = Field(
        description="The user name as typed, the API key's id, or for a sign-in through the "
        "identity provider the directory user it matched (empty when none)."
    )
    identity: ClientId = Field(
        default="", description="The identity the provider vouched for, when it got that far."
    )
    address: Word = Field(description="The client address the attempt came from.")
    outcome: AccessOutcome
    reason: Reason = Field(default="", description="Why it was refused, in plain words.")


def access_attempt(
    kind: Literal["sign_in", "api_key", "oidc_sign_in"],
    user: str,
    address: str,
    outcome: AccessOutcome,
    reason: str = "",
    identity: str = "",
) -> AccessAttempt:
    """An access attempt, the name cut to a sane length (and never marked: it may be a password)."""
    return AccessAttempt(
        kind=kind,
        user=user[:_NAME_CHARS],
        address=address,
        outcome=outcome,
        reason=reason,
        identity=identity,
    )


#: Refused attempts a negotiation page shows at most: the latest.
TRAIL_LENGTH = 100


class AuditLog:
    """An append-only JSON-lines file of decision and access attempts, and one per negotiation.

    ``path`` holds every record (as it always did); the folder ``<stem>.by-negotiation`` beside
    it holds a copy of each decision attempt on a negotiation the UI could read, one file per
    negotiation. A log written before the folder existed is indexed into it once, at start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.with_name(f"{path.stem}.by-negotiation")
        self._lock = asyncio.Lock()
        self._index_once()

    def trail_file(self, negotiation_id: str) -> Path:
        """The file of one negotiation's attempts (a hash of the id: any id is a safe name)."""
        return self.folder / f"{hashlib.sha256(negotiation_id.encode()).hexdigest()}.jsonl"

    async def append(
        self, attempt: DecisionAttempt | AccessAttempt, *, on_trail: bool = True
    ) -> None:
        """Write one attempt; lines from concurrent requests never interleave.

        A decision attempt goes on its negotiation's trail too, unless ``on_trail`` is false:
        for an attempt refused before the negotiation was read (its id may be made up).
        """
        line = attempt.model_dump_json() + "\n"
        trail = None
        if isinstance(attempt, DecisionAttempt) and on_trail:
            trail = self.trail_file(attempt.negotiation_id)
        async with self._lock:
            await asyncio.to_thread(self._write, line, trail)

    def _write(self, line: str, trail: Path | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)
        if trail is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            with trail.open("a", encoding="utf-8") as out:
                out.write(line)

    async def for_negotiation(
        self, negotiation_id: str, limit: int = TRAIL_LENGTH
    ) -> list[DecisionAttempt]:
        """The latest ``limit`` attempts on one negotiation, oldest first; reads its file only."""
        return await asyncio.to_thread(self._read_trail, negotiation_id, limit)

    def _read_trail(self, negotiation_id: str, limit: int) -> list[DecisionAttempt]:
        path = self.trail_file(negotiation_id)
        if not path.exists():
            return []
        found: deque[DecisionAttempt] = deque(maxlen=limit)
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                record = _decision(line)
                if record is not None and record.negotiation_id == negotiation_id:
                    found.append(record)
        return list(found)

    def _index_once(self) -> None:
        """Index a log from before the per-negotiation files (built aside, then renamed in)."""
        if self.folder.exists() or not self.path.exists():
            return
        building = self.folder.with_name(f"{self.folder.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                record = _decision(line)
                if record is not None:
                    name = self.trail_file(record.negotiation_id).name
                    with (building / name).open("a", encoding="utf-8") as out:
                        out.write(record.model_dump_json() + "\n")
        try:
            building.rename(self.folder)
        except OSError:  # another process indexed it first
            shutil.rmtree(building, ignore_errors=True)


def _decision(line: str) -> DecisionAttempt | None:
    """The decision attempt on ``line``; None for another kind, or a torn last line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None  # a torn last line from a crash; the rest stays readable
    if not isinstance(record, dict) or record.get("kind", "decision") != "decision":
        return None
    try:
        return DecisionAttempt.model_validate(record)
    except ValidationError:
        return None
