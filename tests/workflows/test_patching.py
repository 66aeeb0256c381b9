"""Reordering a workflow's commands breaks the replay of open negotiations; ``workflow.patched`` fixes it.

``Original`` runs on the server (production converter and codec) and its history is recorded.
``Reordered`` makes the same change unguarded and fails to replay that history with a
NondeterminismError; ``ReorderedBehindPatch`` makes it behind ``workflow.patched`` and replays it.
All three share one workflow name, as two deployments of one workflow would.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker, WorkflowReplayResult
from temporalio.workflow import NondeterminismError

from tests.encryption import DATA_CONVERTER

NAME = "PatchDemo"
PATCH = "remind-before-review"
REVIEW_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="patch_demo_review")
async def review(terms: str) -> str:
    """Stands in for a movement's review activity."""
    return f"reviewed {terms}"


@workflow.defn(name=NAME, sandboxed=False)
class Original:
    """Version 1: review the terms, then wait an hour."""

    @workflow.run
    async def run(self, terms: str) -> str:
        verdict = await workflow.execute_activity(
            review, terms, start_to_close_timeout=REVIEW_TIMEOUT
        )
        await workflow.sleep(timedelta(hours=1))
        return verdict


@workflow.defn(name=NAME, sandboxed=False)
class Reordered:
    """Version 2, unguarded: wait first, then review."""

    @workflow.run
    async def run(self, terms: str) -> str:
        await workflow.sleep(timedelta(hours=1))
        return await workflow.execute_activity(review, terms, start_to_close_timeout=REVIEW_TIMEOUT)


@workflow.defn(name=NAME, sandboxed=False)
class ReorderedBehindPatch:
    """Version 2 behind a patch: new runs wait first, runs started by version 1 keep its order."""

    @workflow.run
    async def run(self, terms: str) -> str:
        if workflow.patched(PATCH):
            await workflow.sleep(timedelta(hours=1))
            return await workflow.execute_activity(
                review, terms, start_to_close_timeout=REVIEW_TIMEOUT
            )
        verdict = await workflow.execute_activity(
            review, terms, start_to_close_timeout=REVIEW_TIMEOUT
        )
        await workflow.sleep(timedelta(hours=1))
        return verdict


async def _run(env: WorkflowEnvironment, workflow_class: type) -> tuple[WorkflowHandle, list[int]]:
    """Run one execution of ``workflow_class``; return its history's event types."""
    task_queue = f"patch-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[workflow_class], activities=[review]
    ):
        handle = await env.client.start_workflow(
            NAME, "v1 terms", id=f"patch-demo-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        assert await handle.result() == "reviewed v1 terms"
        return handle, [e.event_type for e in (await handle.fetch_history()).events]


async def _replay(history: WorkflowHistory, workflow_class: type) -> WorkflowReplayResult:
    replayer = Replayer(workflows=[workflow_class], data_converter=DATA_CONVERTER)
    return await replayer.replay_workflow(history, raise_on_replay_failure=False)


async def test_reordering_commands_without_a_patch_fails_replay_and_with_a_patch_replays(ts_env):
    handle, _ = await _run(ts_env, Original)
    history = await handle.fetch_history()

    unguarded = await _replay(history, Reordered)
    assert isinstance(unguarded.replay_failure, NondeterminismError), unguarded.replay_failure

    guarded = await _replay(history, ReorderedBehindPatch)
    assert guarded.replay_failure is None


async def test_new_runs_behind_the_patch_take_the_new_order(ts_env):
    _, events = await _run(ts_env, ReorderedBehindPatch)
    assert EventType.EVENT_TYPE_MARKER_RECORDED in events  # the patch is recorded
    timer = events.index(EventType.EVENT_TYPE_TIMER_STARTED)
    assert timer < events.index(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
