"""A negotiation carrying a canary term, and where to look for payloads in a history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from negotiation.models import HumanDecision, Verdict
from starters import client as api
from tests.encryption import DATA_CONVERTER, worker_settings
from tests.workflows.harness import Negotiation, make_request, terms
from workers.devserver import DevServer
from workers.worker import build_worker


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload inside ``message`` (inputs, signals, updates, memo, failures, summaries...).

    Search attributes are left out: the server must read them to index them, so they are never
    encrypted, and they carry no deal terms (tests/activities/test_confidential_logging.py).
    So are patch markers: the SDK's core writes them (never through the codec) and they hold
    only the patch id, a constant of the code.
    """
    if isinstance(message, Payload):
        yield message
        return
    if getattr(message, "marker_name", None) == "core_patch":
        return
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            entries = value.values()
        elif field.is_repeated:
            entries = value
        else:
            entries = [value]
        for entry in entries:
            if isinstance(entry, Message):
                yield from payloads_in(entry)


async def play_with_canary(server: DevServer, workdir: Path, canary: str) -> str:
    """A conductor-led negotiation whose counteroffer, note and decision comment carry ``canary``."""
    client = await Client.connect(
        server.settings.address, namespace=server.settings.namespace, data_converter=DATA_CONVERTER
    )
    settings = worker_settings(workdir)
    task_queue = f"canary-{uuid.uuid4().hex[:8]}"
    request = make_request("conductor_led")
    async with build_worker(client, settings, task_queue=task_queue):
        await api.start_negotiation(client, request, task_queue=task_queue)
        n = Negotiation(client, request, workdir / "outbox")
        offer = terms(51234, 5, 45, clauses=(canary,))
        await n.respond("counter", offer, note=f"{canary}: our board caps this at 51234")
        pending = await n.pending("deal_owner")
        await api.decide(
            client,
            n.id,
            HumanDecision(
                message_id=f"hd-{uuid.uuid4().hex[:8]}",
                request_id=pending.request_id,
                approver="ana",
                verdict=Verdict.REJECT,
                comment=f"{canary} is not acceptable",
            ),
        )
        await n.until(lambda s: s.outcome is not None)
    return n.id
