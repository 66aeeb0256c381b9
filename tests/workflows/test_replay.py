"""Long-lived negotiations outlive deployments: recorded histories must replay on the current code.

``tests/histories/`` holds histories recorded by earlier versions of the workflows. Any change that
breaks their replay needs a ``workflow.patched`` guard. Record new ones with
``FITNEST_RECORD_HISTORIES=<label> make test PYTEST_ARGS=tests/workflows/test_replay.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from negotiation.models import DecisionKind, Movement, Outcome
from tests.encryption import DATA_CONVERTER
from tests.workflows.harness import Negotiation, make_request, terms
from workers.worker import WORKFLOWS

HISTORIES = Path(__file__).parent.parent / "histories"
MOVEMENTS = [m.value for m in Movement]


def _replayer() -> Replayer:
    return Replayer(workflows=list(WORKFLOWS), data_converter=DATA_CONVERTER)


async def _histories(client: Client, negotiation_id: str) -> list[WorkflowHistory]:
    ids = [negotiation_id] + [f"{negotiation_id}/{m}" for m in MOVEMENTS]
    found = []
    for wid in ids:
        try:
            found.append(await client.get_workflow_handle(wid).fetch_history())
        except Exception:  # a movement that never played
            continue
    return found


async def _play_ensemble_with_escalation(n: Negotiation) -> None:
    await n.respond("counter", terms(45000, 10, 45))
    s = await n.until(lambda s: len(s.pending_decisions) >= 2)
    await n.decide(
        next(p for p in s.pending_decisions if p.role.value == "deal_owner").request_id,
        "ana",
        "revise",
        revised=terms(55000, 5, 40),
    )
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
    await n.respond("accept")
    s = await n.until(lambda s: any(p.kind == DecisionKind.SIGNATURE for p in s.pending_decisions))
    await n.decide(s.pending_decisions[0].request_id, "ana")
    await n.respond("sign")


async def test_fresh_histories_of_every_movement_replay_deterministically(start):
    n = await start(make_request("collaborative_ensemble"))
    await _play_ensemble_with_escalation(n)
    assert (await n.result()).outcome == Outcome.AGREED
    histories = await _histories(n.client, n.id)
    assert len(histories) == 5
    replayer = _replayer()
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (history.workflow_id, result.replay_failure)
    label = os.environ.get("FITNEST_RECORD_HISTORIES")
    if label:
        HISTORIES.mkdir(exist_ok=True)
        for history in histories:
            name = history.workflow_id.replace(n.id, f"ensemble-{label}").replace("/", "-")
            (HISTORIES / f"{name}.json").write_text(
                json.dumps(
                    {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}
                )
            )


RECORDED = sorted(HISTORIES.glob("*.json"))
assert RECORDED or os.environ.get("FITNEST_RECORD_HISTORIES"), f"no histories in {HISTORIES}"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_histories_still_replay_on_the_current_code(path: Path):
    recorded = json.loads(path.read_text())
    history = WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
