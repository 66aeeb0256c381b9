"""Record the histories of every playbook path: ``python -m tests.histories.record [LABEL]``.

Plays each scenario of :mod:`tests.histories.scenarios` on the time-skipping server with the
current code and the committed TEST keyring (payloads sealed as in production, synthetic data),
replays each history once as a check, and writes ``<scenario>-<LABEL>.json`` (the negotiation)
and ``<scenario>-<LABEL>-<movement>.json`` here. ``tests/workflows/test_replay.py`` replays every
file in this folder on the current code with the production converter and codec: record a new
label when a release changes the workflows, and keep the old files.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from negotiation.models import Movement
from starters import client as api
from tests.conftest import server_binary
from tests.encryption import DATA_CONVERTER, worker_settings
from tests.histories.scenarios import SCENARIOS, Scenario
from tests.workflows.harness import Negotiation
from workers.worker import WORKFLOWS, build_worker
from workflows.search_attributes import ALL

HERE = Path(__file__).parent


async def histories_of(client: Client, negotiation_id: str) -> list[WorkflowHistory]:
    """The negotiation's history and those of the movements it played."""
    found = []
    for workflow_id in [negotiation_id, *(f"{negotiation_id}/{m.value}" for m in Movement)]:
        try:
            found.append(await client.get_workflow_handle(workflow_id).fetch_history())
        except RPCError:
            continue  # a movement this path never reached
    return found


def file_name(history: WorkflowHistory, negotiation_id: str, scenario: str, label: str) -> str:
    """``<scenario>-<label>[-<movement>].json``."""
    return history.workflow_id.replace(negotiation_id, f"{scenario}-{label}").replace("/", "-")


async def record_one(
    env: WorkflowEnvironment, scenario: Scenario, task_queue: str, outbox: Path, label: str
) -> list[Path]:
    """Play ``scenario`` to its end, check its histories replay, write them."""
    request = scenario.request(now=await env.get_current_time())
    await api.start_negotiation(env.client, request, task_queue=task_queue)
    n = Negotiation(env.client, request, outbox, env)
    status = await scenario.play(n)
    if status.outcome != scenario.outcome:
        raise SystemExit(f"{scenario.name}: ended {status.outcome}, expected {scenario.outcome}")
    await n.result()  # through the retrospective window: the history is complete
    written = []
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=DATA_CONVERTER)
    for history in await histories_of(env.client, n.id):
        await replayer.replay_workflow(history)
        path = HERE / f"{file_name(history, n.id, scenario.name, label)}.json"
        document = {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}
        path.write_text(json.dumps(document) + "\n")
        written.append(path)
    return written


async def record(label: str) -> list[Path]:
    """Record every scenario under ``label``; return the files written."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server_binary("temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={key.name: key.indexed_value_type for key in ALL},  # type: ignore[misc]
            )
        )
        with tempfile.TemporaryDirectory(prefix="fitnest-record-") as tmp:
            work = Path(tmp)
            settings = worker_settings(work)
            task_queue = f"record-{uuid.uuid4().hex[:8]}"
            written: list[Path] = []
            async with build_worker(env.client, settings, task_queue=task_queue):
                for scenario in SCENARIOS:
                    files = await record_one(env, scenario, task_queue, work / "outbox", label)
                    print(f"{scenario.name}: {len(files)} histories", flush=True)
                    written += files
            return written
    finally:
        await env.shutdown()


def main() -> None:
    """Entry point: the label (default ``r2``) names the release that recorded the files."""
    label = sys.argv[1] if len(sys.argv) > 1 else "r2"
    written = asyncio.run(record(label))
    print(f"wrote {len(written)} histories to {HERE}")


if __name__ == "__main__":
    main()
