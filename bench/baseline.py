"""The baselines: plain Temporal workflows that Fitnest's numbers are read against.

- :class:`MinimalWorkflow`: one activity, then it waits for one signal, then completes. What
  any workflow costs end to end (throughput) and parked (memory, evicted queries).
- :class:`TrivialWorkflow`: answers updates, signals and queries with no work; optionally one
  activity per signal (a plain "round"), and optionally an end after some days (a deadline).

``python -m bench.baseline --address HOST:PORT --task-queue Q`` runs their worker.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn
async def touch(name: str) -> str:
    """The cheapest activity that still crosses the worker: echo the name back."""
    return name


@workflow.defn
class MinimalWorkflow:
    """One activity, then waits for one signal, then completes."""

    def __init__(self) -> None:
        self._touched = False
        self._released = False

    @workflow.signal
    def release(self) -> None:
        """Let the workflow complete."""
        self._released = True

    @workflow.query
    def parked(self) -> bool:
        """Whether the activity is done and the workflow waits for its signal."""
        return self._touched and not self._released

    @workflow.run
    async def run(self, name: str) -> str:
        echoed = await workflow.execute_activity(
            touch, name, start_to_close_timeout=timedelta(seconds=30)
        )
        self._touched = True
        await workflow.wait_condition(lambda: self._released)
        return echoed


class TrivialInput(BaseModel):
    """How the trivial workflow plays."""

    activity_per_signal: bool = False
    deadline_days: float | None = None


@workflow.defn
class TrivialWorkflow:
    """Takes numbers by signal or update and shows the last one answered in a query."""

    def __init__(self) -> None:
        self._received = 0
        self._answered = 0
        self._done = False

    @workflow.signal
    def poke(self, number: int) -> None:
        """A number to answer (with an activity, if the workflow was started so)."""
        self._received = max(self._received, number)

    @workflow.signal
    def finish(self) -> None:
        """Complete once the numbers received are answered."""
        self._done = True

    @workflow.update
    def put(self, number: int) -> int:
        """Take a number and answer at once (the cheapest update)."""
        self._received = self._answered = max(self._answered, number)
        return number

    @workflow.query
    def seen(self) -> int:
        """The last number answered."""
        return self._answered

    @workflow.run
    async def run(self, plays: TrivialInput) -> int:
        days = plays.deadline_days
        timeout = timedelta(days=days) if days is not None else None
        end = workflow.now() + timeout if timeout is not None else None
        while True:
            left = (end - workflow.now()) if end is not None else None
            try:
                await workflow.wait_condition(
                    lambda: self._done or self._received > self._answered, timeout=left
                )
            except TimeoutError:
                return self._answered
            if self._received > self._answered:
                number = self._received
                if plays.activity_per_signal:
                    await workflow.execute_activity(
                        touch, str(number), start_to_close_timeout=timedelta(seconds=30)
                    )
                self._answered = number
            elif self._done:
                return self._answered


async def _serve(address: str, namespace: str, task_queue: str, max_cached: int) -> None:
    # Imported here, not with the workflows: the sandbox re-imports a workflow module's imports,
    # and cryptography's native bindings cannot be imported twice.
    from bench.keys import bench_converter

    client = await Client.connect(address, namespace=namespace, data_converter=bench_converter())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[MinimalWorkflow, TrivialWorkflow],
        activities=[touch],
        max_cached_workflows=max_cached,
    ):
        await stop.wait()


def main() -> None:
    """Entry point of ``python -m bench.baseline``: serve the baselines until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--max-cached-workflows", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(_serve(args.address, args.namespace, args.task_queue, args.max_cached_workflows))


if __name__ == "__main__":
    main()
