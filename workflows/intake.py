"""Reading a signal whatever it holds: no input, two inputs, bytes that are no JSON, a payload the
worker could not decrypt. Every workflow takes its signals through one dynamic handler that calls
:func:`read_one`, so the SDK never calls a handler with the wrong number of arguments (which
fails every workflow task) or drops a payload it cannot convert with only a log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

#: ``metadata["encoding"]`` the worker's codec gives a payload it could not open.
UNREADABLE_ENCODING = b"binary/unreadable"
#: ``metadata`` key holding why (bounded, no payload content).
UNREADABLE_REASON = "fitnest-unreadable-reason"

# What a reason or an id read here holds is bounded where it is recorded (RejectedMessage).


def read_one(args: Sequence[RawValue]) -> tuple[Any, str | None]:
    """The one input of a signal as plain JSON data, or None and the reason it cannot be read."""
    if len(args) != 1:
        return None, f"expected 1 input, got {len(args)} inputs"
    payload = args[0].payload
    if payload.metadata.get("encoding") == UNREADABLE_ENCODING:
        why = payload.metadata.get(UNREADABLE_REASON, b"").decode(errors="replace")
        return None, f"cannot be read: {why or 'the payload could not be decrypted'}"
    try:
        return workflow.payload_converter().from_payload(payload), None
    except Exception as err:  # any converter error: the payload is what a client made it
        return None, f"cannot be read: not a JSON payload ({type(err).__name__})"


def message_id_of(payload: Any) -> str | None:
    """The message id a payload claims; None when it has no readable one."""
    value = payload.get("message_id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None
