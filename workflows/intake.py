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

with workflow.unsafe.imports_passed_through():
    from negotiation.models import shorten

#: ``metadata["encoding"]`` the worker's codec gives a payload it could not open.
UNREADABLE_ENCODING = b"binary/unreadable"
#: ``metadata`` key holding why (bounded, no payload content).
UNREADABLE_REASON = "fitnest-unreadable-reason"

#: Bounds on what a client-supplied string may occupy in a workflow's state.
MAX_ID = 128
MAX_NAME = 64
MAX_REASON = 500


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut (ids and names from clients)."""
    return shorten(text, limit)


def read_one(args: Sequence[RawValue]) -> tuple[Any, str | None]:
    """The one input of a signal as plain JSON data, or None and the reason it cannot be read."""
    if len(args) != 1:
        return None, f"expected 1 input, got {len(args)} inputs"
    payload = args[0].payload
    if payload.metadata.get("encoding") == UNREADABLE_ENCODING:
        why = payload.metadata.get(UNREADABLE_REASON, b"").decode(errors="replace")
        return None, bounded(
            f"cannot be read: {why or 'the payload could not be decrypted'}", MAX_REASON
        )
    try:
        return workflow.payload_converter().from_payload(payload), None
    except Exception as err:  # any converter error: the payload is what a client made it
        return None, bounded(
            f"cannot be read: not a JSON payload ({type(err).__name__})", MAX_REASON
        )


def message_id_of(payload: Any) -> str | None:
    """The message id a payload claims, bounded; None when it has no readable one."""
    value = payload.get("message_id") if isinstance(payload, dict) else None
    return bounded(value, MAX_ID) if isinstance(value, str) else None
