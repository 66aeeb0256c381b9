"""The playbook paths once more with the worker's workflow cache off: every workflow task replays.

With ``max_cached_workflows=0`` the worker keeps no workflow in memory, so each task rebuilds the
workflow from its whole history. Any nondeterminism (a command that depends on something other
than the history) fails here even when the cached runs pass.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from starters import client as api
from tests.encryption import worker_settings
from tests.histories.scenarios import SCENARIOS, Scenario
from tests.workflows.harness import Negotiation
from workers.worker import build_worker

#: One path per playbook through all four movements (the paths that issue the most commands);
#: the others replay from their recorded histories in tests/workflows/test_replay.py.
KEY_PATHS = ("conductor-agreed", "ensemble-escalation-agreed", "automated-escalation-agreed")


async def play(
    env: WorkflowEnvironment, scenario: Scenario, task_queue: str, outbox
) -> Negotiation:
    request = scenario.request()
    await api.start_negotiation(env.client, request, task_queue=task_queue)
    n = Negotiation(env.client, request, outbox)
    status = await scenario.play(n)
    assert status.outcome == scenario.outcome, (scenario.name, status.outcome_reason)
    return n


# Evicted after every task, a workflow that created a coroutine it never reached warned
# "coroutine ... was never awaited" (the closure's finance review, created before the legal one).
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
async def test_every_playbook_path_reaches_its_outcome_with_the_workflow_cache_off(
    dev_env: WorkflowEnvironment, tmp_path
):
    settings = worker_settings(tmp_path, max_cached_workflows=0)
    task_queue = f"nocache-{uuid.uuid4().hex[:8]}"
    worker = build_worker(dev_env.client, settings, task_queue=task_queue)
    assert worker.config()["max_cached_workflows"] == 0
    live = [s for s in SCENARIOS if s.name in KEY_PATHS]
    async with worker:
        played = await asyncio.gather(
            *(play(dev_env, s, task_queue, settings.outbox_dir) for s in live)
        )
    assert len(played) == len(KEY_PATHS)
