"""Long-lived negotiations outlive deployments: recorded histories must replay on the current code.

``tests/histories/`` holds histories recorded by earlier versions of the workflows: ``ensemble-r1-*``
(the first release, plain payloads from before encryption) and one set per playbook path recorded
by ``python -m tests.histories.record`` (payloads sealed with the committed test keyring): r2 and
r3 on release 4's message path (``workflows/legacy``), r5 on the one-hop path. They
replay here with the production converter and codec. Any change that breaks their replay needs a
``workflow.patched`` guard (see ``test_patching.py`` and the README).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.encryption import DATA_CONVERTER
from tests.histories.record import histories_of
from tests.histories.scenarios import SCENARIOS
from workers.worker import WORKFLOWS

HISTORIES = Path(__file__).parent.parent / "histories"
RECORDED = sorted(HISTORIES.glob("*.json"))
PATHS = {s.name for s in SCENARIOS}


def _replayer() -> Replayer:
    return Replayer(workflows=list(WORKFLOWS), data_converter=DATA_CONVERTER)


async def test_fresh_histories_of_every_movement_replay_deterministically(start):
    scenario = next(s for s in SCENARIOS if s.name == "ensemble-escalation-agreed")
    n = await start(scenario.request())
    assert (await scenario.play(n)).outcome == scenario.outcome
    await n.result()
    histories = await histories_of(n.client, n.id)
    assert len(histories) == 5
    replayer = _replayer()
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (history.workflow_id, result.replay_failure)


def test_every_playbook_path_has_recorded_histories():
    recorded = {p.stem for p in RECORDED}
    missing = [name for name in sorted(PATHS) if not any(r.startswith(name) for r in recorded)]
    assert missing == [], f"record them: python -m tests.histories.record (missing {missing})"
    assert any(p.startswith("ensemble-r1") for p in recorded)  # plain, from before encryption


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_histories_still_replay_on_the_current_code(path: Path):
    recorded = json.loads(path.read_text())
    history = WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_sealed_histories_do_not_replay_without_the_codec():
    recorded = json.loads((HISTORIES / "conductor-agreed-r2.json").read_text())
    history = WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])
    plain = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    result = await plain.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None  # the payloads are ciphertext to a plain converter
