"""Negotiations that Temporal lists but nobody can read, made with real parts.

Anyone who can reach the namespace can start a workflow of type ``NegotiationWorkflow`` on a
deployment's task queue, with any input and any search attributes; and a worker of another
deployment (another keyring) or of a broken release can answer for it. Each helper here makes one
such negotiation for real: the reports, pages and lists that read many negotiations must name it
and go on with the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RawValue, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.worker import Worker

from negotiation.models import Outcome, Role
from workers.client import data_converter_for
from workers.codec import ENCRYPTED_ENCODING, KEY_ID_METADATA
from workflows import search_attributes as sa

#: A key id no keyring of the tests holds.
GONE_KEY = "k-retired-and-removed"

#: A status or result past gRPC's 4 MB limit for one message.
TOO_LARGE = 5 * 1024 * 1024


def _with_converter(client: Client, converter: DataConverter) -> Client:
    """``client``'s connection with another data converter."""
    config = client.config()
    config["data_converter"] = converter
    return Client(**config)


def _attributes(*, outcome: bool = False, awaiting: Role | None = None) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair] = []  # type: ignore[type-arg]
    if outcome:  # listed among those in their retrospective window
        pairs.append(SearchAttributePair(sa.OUTCOME, Outcome.AGREED.value))
    if awaiting is not None:  # listed in the inbox of that role
        pairs.append(SearchAttributePair(sa.AWAITING_DECISION, [awaiting.value]))
    return TypedSearchAttributes(pairs)


async def start_sealed_with_a_gone_key(
    client: Client, task_queue: str, *, outcome: bool = False, awaiting: Role | None = None
) -> WorkflowHandle:  # type: ignore[type-arg]
    """A ``NegotiationWorkflow`` whose input is sealed with a key no keyring holds: every worker
    fails its workflow task (so its queries fail), and its request cannot be decrypted."""
    plain = _with_converter(client, pydantic_data_converter)  # sends the payload as it is
    sealed = Payload(
        metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: GONE_KEY.encode()},
        data=b"\0" * 48,
    )
    return await plain.start_workflow(
        "NegotiationWorkflow",
        RawValue(sealed),
        id=f"gone-key-{uuid.uuid4().hex[:10]}",
        task_queue=task_queue,
        search_attributes=_attributes(outcome=outcome, awaiting=awaiting),
    )


@workflow.defn(name="NegotiationWorkflow", sandboxed=False)
class ForeignNegotiation:
    """Another deployment's ``NegotiationWorkflow``: its answers are whatever it is told to give
    (``size`` characters), sealed with its own keyring. With ``complete`` it ends at once."""

    def __init__(self) -> None:
        self.size = 0

    @workflow.run
    async def run(self, size: int, complete: bool) -> str:
        self.size = size
        if not complete:
            await workflow.wait_condition(lambda: False)
        return "x" * size

    @workflow.query
    def status(self) -> str:
        return "x" * self.size

    @workflow.query
    def result_so_far(self) -> str:
        return "x" * self.size


async def _idle(handle: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """Wait for the first workflow task to complete. A query sent while a task is in flight is
    answered in that task's completion, and a completion past the limit makes the server
    terminate the workflow; once idle, a query gets its own task and only the query fails."""
    for _ in range(100):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id}: its first workflow task never completed")


@dataclasses.dataclass(frozen=True)
class Foreign:
    """A worker of another deployment, on our task queue, and a client with its keyring."""

    client: Client
    task_queue: str

    async def completed(self) -> str:
        """A completed ``NegotiationWorkflow`` whose result our keyring cannot open."""
        handle = await self.client.start_workflow(
            "NegotiationWorkflow",
            args=[10, True],
            id=f"foreign-done-{uuid.uuid4().hex[:10]}",
            task_queue=self.task_queue,
        )
        await asyncio.wait_for(handle.result(), 30)
        return handle.id

    async def answering_too_much(self) -> str:
        """A ``NegotiationWorkflow`` with an outcome, whose result_so_far and status pass 4 MB."""
        handle = await self.client.start_workflow(
            "NegotiationWorkflow",
            args=[TOO_LARGE, False],
            id=f"foreign-large-{uuid.uuid4().hex[:10]}",
            task_queue=self.task_queue,
            search_attributes=_attributes(outcome=True),
        )
        await _idle(handle)
        return handle.id


@asynccontextmanager
async def foreign_worker(client: Client, task_queue: str, workdir: Path) -> AsyncIterator[Foreign]:
    """A worker for :class:`ForeignNegotiation` on ``task_queue``, sealing with a keyring of its
    own (made in ``workdir``). Run it only while no worker of ours serves the queue."""
    foreign = _with_converter(client, data_converter_for(workdir / "foreign-keys.json"))
    async with Worker(foreign, task_queue=task_queue, workflows=[ForeignNegotiation]):
        yield Foreign(foreign, task_queue)
