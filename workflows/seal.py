"""The sealed channel between the negotiation and its movements.

A signal carries no trustworthy sender: anyone who can reach the namespace can send any signal
name to any workflow id, the movements' included. So the messages the negotiation and its
movements send each other are sealed: an HMAC-SHA256 over the channel, the scope (negotiation id
and run), a counter and the exact body, with a key that only workers hold (the seal keyring,
``FITNEST_SEAL_KEY_FILE``; never given to clients, the UI or the CLI, and never in a history).

- A message whose seal does not verify is *forged*; one whose counter is not past the last taken
  is a *replay* (a copy taken from the history); both are recorded as rejected and change nothing.
- The key sealing a negotiation's messages is chosen from the negotiation's start time, so replay
  picks the same one: a new key (``fitnest keys rotate --seal``) seals negotiations started after
  its ``created`` time; keys stay in the ring while negotiations they sealed are open.

The keys are installed once per worker process by :func:`install` (``workers.worker``); workflow
code reads them through this module, passed through the sandbox. Import its names with
``from workflows.seal import ...``: ``from workflows import seal`` would load a second, empty
copy inside the sandbox (the submodule import bypasses the pass-through).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError

from negotiation.decisions import explain

#: Channel of messages the negotiation forwards to the movement playing.
SEALED_DELIVER = "sealed_deliver"
#: Channel of reports a movement sends the negotiation.
SEALED_REPORTS = "sealed_reports"


@dataclass(frozen=True)
class SealKey:
    """One key of the seal keyring; it seals negotiations started from ``created`` on."""

    key_id: str
    key: bytes
    created: datetime


_keys: dict[str, SealKey] = {}

M = TypeVar("M", bound=BaseModel)


def install(keys: Iterable[SealKey]) -> None:
    """Make ``keys`` known to workflow code in this process (added to those already known)."""
    for k in keys:
        _keys[k.key_id] = k


def installed() -> bool:
    """True once this process holds at least one seal key."""
    return bool(_keys)


def choose_key(started: datetime, keys: Iterable[SealKey] | None = None) -> str | None:
    """The key for a negotiation started at ``started``: the newest created by then (the oldest
    when all are newer), among ``keys`` (default: those installed). Deterministic for a given
    keyring, so replay picks the same key."""
    ordered = sorted(_keys.values() if keys is None else keys, key=lambda k: (k.created, k.key_id))
    if not ordered:
        return None
    eligible = [k for k in ordered if k.created <= started]
    return (eligible[-1] if eligible else ordered[0]).key_id


class SealContext(BaseModel):
    """What a negotiation's movements need to seal and open their messages (no secret in it)."""

    key_id: str = Field(max_length=128)
    scope: str = Field(max_length=400, description="Negotiation id and run: seals bind to it.")
    delivered: int = Field(
        default=0,
        description="Counter of the last message to the movement playing (sent, on the "
        "negotiation's side; taken, on the movement's).",
    )
    reported: int = Field(
        default=0,
        description="Counter of the last report batch (sent, on the movement's side; taken, on "
        "the negotiation's).",
    )

    def scope_for(self, movement: str, direction: str) -> str:
        """What a seal binds a message to: this negotiation's run, the movement and the
        direction (``down`` to the movement, ``up`` to the negotiation)."""
        return f"{self.scope}:{movement}:{direction}"


class Sealed(BaseModel):
    """A sealed message: the body is kept as the exact text the seal covers."""

    key_id: str = Field(max_length=128)
    counter: int
    body: str
    mac: str = Field(max_length=128)


def _mac(key: bytes, channel: str, scope: str, counter: int, body: str) -> str:
    text = "\x00".join((channel, scope, str(counter), body)).encode()
    return base64.b64encode(hmac.new(key, text, hashlib.sha256).digest()).decode()


def seal_message(context: SealContext, channel: str, scope: str, counter: int, body: str) -> Sealed:
    """Seal ``body`` for ``channel`` in ``scope`` (the receiver's) with the negotiation's key."""
    key = _keys[context.key_id].key
    return Sealed(
        key_id=context.key_id,
        counter=counter,
        body=body,
        mac=_mac(key, channel, scope, counter, body),
    )


def _verify(
    context: SealContext, channel: str, scope: str, message: Sealed, last: int
) -> str | None:
    known = _keys.get(message.key_id)
    if known is None or message.key_id != context.key_id:
        return "forged: sealed with a key this negotiation does not use"
    expected = _mac(known.key, channel, scope, message.counter, message.body)
    if not hmac.compare_digest(expected, message.mac):
        return "forged: the seal does not match the message"
    if message.counter <= last:
        return f"replay: message {message.counter} was already taken (last {last})"
    return None


def open_sealed(
    context: SealContext, channel: str, scope: str, payload: object, last: int, body: type[M]
) -> tuple[M, int] | str:
    """The ``body`` a sealed message carries and its counter; or why it cannot be taken:
    malformed, forged (its seal does not hold) or a replay (its counter is not past ``last``)."""
    try:
        message = Sealed.model_validate(payload)
    except ValidationError as err:
        return f"malformed: {explain(err)}"
    why = _verify(context, channel, scope, message, last)
    if why is not None:
        return why
    try:
        return body.model_validate_json(message.body), message.counter
    except ValidationError as err:  # sealed by a worker of another release, say
        return f"malformed: {explain(err)}"
