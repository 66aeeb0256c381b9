"""The baseline: a minimal workflow with one activity and one signal, driven like a negotiation.

It is what any Temporal workflow costs on this machine and server; Fitnest's numbers are read
against it, measured in the same run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.report import Sample


@activity.defn
async def touch(name: str) -> str:
    """The cheapest activity that still crosses the worker: echo the name back."""
    return name


@workflow.defn
class MinimalWorkflow:
    """One activity, then waits for one signal, then completes."""

    def __init__(self) -> None:
        self._released = False

    @workflow.signal
    def release(self) -> None:
        """Let the workflow complete."""
        self._released = True

    @workflow.run
    async def run(self, name: str) -> str:
        echoed = await workflow.execute_activity(
            touch, name, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self._released)
        return echoed


def baseline_worker(client: Client, task_queue: str) -> Worker:
    """A worker for the minimal workflow and its activity."""
    return Worker(client, task_queue=task_queue, workflows=[MinimalWorkflow], activities=[touch])


async def _one(client: Client, task_queue: str, workflow_id: str) -> None:
    handle = await client.start_workflow(
        MinimalWorkflow.run, workflow_id, id=workflow_id, task_queue=task_queue
    )
    await handle.signal(MinimalWorkflow.release)
    await handle.result()


async def run_minimal(client: Client, task_queue: str, count: int) -> tuple[Sample, list[str]]:
    """Run ``count`` minimal workflows at once, start to result; the sample and their ids."""
    tag = uuid.uuid4().hex[:8]
    ids = [f"bench-minimal-{tag}-{i:04d}" for i in range(count)]
    began = time.perf_counter()
    await asyncio.gather(*(_one(client, task_queue, wid) for wid in ids))
    return Sample.of(count, time.perf_counter() - began), ids
