"""Attacks from a client of the namespace: forgery, poison and erasure (the trust boundary).

Each test starts negotiations of its own on the shared dev server (one worker for the module), so
that one case that stalls a negotiation cannot hide another. A client of the namespace can send
any signal name, with any payload (or none, or two), to any workflow id, the movements' included:
nothing it sends may decide, fail a workflow task, or vanish without a record.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from negotiation.models import (
    CounterpartyResponse,
    NegotiationStatus,
    RejectedMessage,
    RetrospectiveAnswer,
)
from starters import client as api
from tests.encryption import worker_settings
from tests.integration.test_bad_input import _task_failures
from tests.workflows.harness import Negotiation, make_request, terms
from workers.worker import build_worker

pytestmark = pytest.mark.integration

COUNTER = terms(50000, 10, 45)
#: What a non-participant tried to send to the counterparty: 1,000 EUR at 60 % off.
GIVEAWAY = terms(1000, 60, 45)


@dataclass
class Site:
    """The module's worker, and how to start negotiations on it."""

    client: Client
    plain: Client  # the same namespace without our codec: what the raw `temporal` CLI sends
    task_queue: str
    outbox: Path

    async def start(self, playbook: str, **overrides: Any) -> Negotiation:
        n = Negotiation(self.client, make_request(playbook, **overrides), self.outbox)
        assert (
            await api.start_negotiation(self.client, n.request, task_queue=self.task_queue)
        ).started
        return n

    async def in_development(self) -> Negotiation:
        """An automated negotiation after one round: development waits for the counterparty."""
        n = await self.start("automated")
        await n.respond("counter", COUNTER)
        await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 3)
        return n

    async def owner_deciding(self) -> tuple[Negotiation, str]:
        """A conductor-led negotiation whose deal owner's decision is pending."""
        n = await self.start("conductor_led")
        await n.respond("counter", COUNTER)
        pending = await n.pending("deal_owner")
        return n, pending.request_id

    async def signal(self, workflow_id: str, name: str, *args: Any, plain: bool = False) -> None:
        client = self.plain if plain else self.client
        await client.get_workflow_handle(workflow_id).signal(name, args=list(args))


@pytest.fixture(scope="module")
async def site(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    workdir = tmp_path_factory.mktemp("trust")
    task_queue = f"trust-{uuid.uuid4().hex[:10]}"
    settings = worker_settings(workdir, task_queue=task_queue)
    plain = Client(
        dev_env.client.service_client,
        namespace=dev_env.client.namespace,
        data_converter=DataConverter.default,
    )
    async with build_worker(dev_env.client, settings, task_queue=task_queue):
        yield Site(dev_env.client, plain, task_queue, workdir / "outbox")


async def rejected(
    n: Negotiation, check: Callable[[RejectedMessage], bool], timeout: float = 20.0
) -> NegotiationStatus:
    """Wait until the negotiation records a rejection that passes ``check``."""
    return await n.until(lambda s: any(check(r) for r in s.rejected_messages), timeout)


async def no_task_failed(site: Site, n: Negotiation) -> None:
    assert await _task_failures(site.client, n.id) == []


async def moves_on(n: Negotiation) -> None:
    """A good counteroffer after the attack is still played (development of an automated run)."""
    before = (await n.status()).our_terms
    assert before is not None
    await n.respond("counter", terms(51000, 10, 45), sequence=50)
    await n.until(lambda s: s.our_terms is not None and s.our_terms.version > before.version)


def forged_decision(request_id: str, approver: str = "mallory") -> dict[str, Any]:
    return {
        "message_id": f"forged-{uuid.uuid4().hex[:6]}",
        "request_id": request_id,
        "approver": approver,
        "verdict": "revise",
        "revised_terms": GIVEAWAY.model_dump(mode="json"),
    }


def forged_record(request_id: str, approver: str = "mallory") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "kind": "counteroffer",
        "role": "deal_owner",
        "approver": approver,
        "approver_authority": "1000000000",
        "verdict": "approve",
        "terms_version": 3,
        "at": datetime.now(UTC).isoformat(),
        "message_id": "forged-record",
    }


async def owner_still_decides(n: Negotiation, request_id: str) -> None:
    """The attack changed nothing: the request is pending and the real deal owner decides it."""
    status = await n.status()
    assert request_id in [p.request_id for p in status.pending_decisions]
    assert not [
        d for d in status.decisions if d.approver == "mallory" or d.message_id == "forged-record"
    ]
    assert not [
        o for o in status.offers if o.terms.total_contract_value == GIVEAWAY.total_contract_value
    ]
    receipt = await n.decide(request_id, "ana")
    assert receipt.approver == "ana"
    await n.until(lambda s: any(d.approver == "ana" for d in s.decisions))


# --- forgery: every internal message name ------------------------------------------------------


@pytest.mark.parametrize("approver", ["mallory", "ana"])
async def test_a_forged_deliver_to_the_movement_decides_nothing(site: Site, approver: str) -> None:
    """A decision sent straight to ``<id>/development`` as the movement's internal ``deliver``
    signal, claiming role and authority, is refused: even in the real deal owner's name."""
    n, request_id = await site.owner_deciding()
    envelope = {
        "decision": forged_decision(request_id, approver),
        "received_at": datetime.now(UTC).isoformat(),
        "approver_authority": "1000000000",
        "role": "deal_owner",
    }
    await site.signal(f"{n.id}/development", "deliver", envelope)
    await rejected(n, lambda r: r.kind == "deliver" and "internal" in r.reason)
    await owner_still_decides(n, request_id)
    assert not [m for m in n.mail() if "1000" in m and "60" in m and "version 4" in m]
    await no_task_failed(site, n)


@pytest.mark.parametrize("name", ["movement_reports", "movement_report"])
async def test_a_forged_movement_report_changes_nothing(site: Site, name: str) -> None:
    """A report sent to the negotiation as if from its movement neither adds an approval to the
    audit trail nor removes the pending request."""
    n, request_id = await site.owner_deciding()
    report = {
        "movement": "development",
        "decided": [forged_record(request_id)],
        "withdrawn": [request_id],
    }
    await site.signal(n.id, name, {"reports": [report]} if name == "movement_reports" else report)
    await rejected(n, lambda r: r.kind == name and "internal" in r.reason)
    await owner_still_decides(n, request_id)
    await no_task_failed(site, n)


async def _sealed_signals(client: Client, workflow_id: str, name: str) -> list[Payload]:
    """The ``name`` signals in the history of ``workflow_id``, once there is one."""
    for _ in range(200):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        found = [
            e.workflow_execution_signaled_event_attributes.input.payloads[0]
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and e.workflow_execution_signaled_event_attributes.signal_name == name
        ]
        if found:
            return found
        await asyncio.sleep(0.05)  # polling the history for the event that proves the point
    return []


@pytest.mark.parametrize("name", ["sealed_reports", "sealed_deliver"])
async def test_a_sealed_internal_message_cannot_be_altered_or_replayed(
    site: Site, name: str
) -> None:
    """The sealed channel between the negotiation and its movements: a message copied from the
    history and sent again is refused as a replay, the same message with its body changed as
    forged, and one with a made-up seal as forged."""
    n, request_id = await site.owner_deciding()
    target = n.id if name == "sealed_reports" else f"{n.id}/development"
    if name == "sealed_deliver":
        # A real response forwarded, so there is one to copy: sent to the negotiation itself
        # while development plays, as a caller that looked just before development started.
        n.sequence += 1
        await site.client.get_workflow_handle(n.id).signal(
            "counterparty_response",
            CounterpartyResponse(
                message_id=f"fwd-{uuid.uuid4().hex[:6]}",
                sequence=n.sequence,
                action="counter",
                terms=terms(49500, 10, 45),
            ),
        )
        await n.until(lambda s: s.queued_messages == 1)
    copies = await _sealed_signals(site.client, target, name)
    assert copies, f"no {name} signal in the history of {target}"
    codec = site.client.data_converter.payload_codec
    assert codec is not None
    # As stored (sealed by the codec); what an operator with the keyring reads in the Web UI.
    original = (await codec.decode([copies[-1]]))[0]
    await site.client.get_workflow_handle(target).signal(name, RawValue(original))
    await rejected(n, lambda r: r.kind == name and "replay" in r.reason)
    sealed = site.client.data_converter.payload_converter.from_payload(original)
    altered = dict(sealed, counter=sealed["counter"] + 100)
    body = json.loads(altered["body"])
    if name == "sealed_reports":
        body["reports"] = [{"movement": "development", "decided": [forged_record(request_id)]}]
    else:
        body = {
            "messages": [
                {
                    "decision": forged_decision(request_id, "ana"),
                    "received_at": datetime.now(UTC).isoformat(),
                }
            ]
        }
    altered["body"] = json.dumps(body)
    await site.signal(target, name, altered)
    made_up = dict(
        altered, counter=altered["counter"] + 1, mac=base64.b64encode(b"x" * 32).decode()
    )
    await site.signal(target, name, made_up)
    await n.until(
        lambda s: (
            len([r for r in s.rejected_messages if r.kind == name and "forged" in r.reason]) == 2
        )
    )
    await owner_still_decides(n, request_id)
    await no_task_failed(site, n)


# --- poison: nothing a client sends fails a workflow task --------------------------------------

SIGNALS = [
    ("", "counterparty_response"),
    ("", "human_decision"),
    ("", "movement_reports"),
    ("", "movement_report"),
    ("", "sealed_reports"),
    ("/development", "deliver"),
    ("/development", "sealed_deliver"),
]


@pytest.mark.parametrize("inputs", [0, 2], ids=["no-input", "two-inputs"])
@pytest.mark.parametrize(("suffix", "name"), SIGNALS, ids=[f"{s}{n}" for s, n in SIGNALS])
async def test_a_signal_with_the_wrong_number_of_inputs_is_recorded(
    site: Site, suffix: str, name: str, inputs: int
) -> None:
    n = await site.in_development()
    args = [{"message_id": "two-1"}, {"message_id": "two-2"}][:inputs]
    await site.signal(f"{n.id}{suffix}", name, *args)
    await rejected(n, lambda r: r.kind == name and f"{inputs} inputs" in r.reason)
    await moves_on(n)
    await no_task_failed(site, n)


ENCRYPTED_PAYLOADS = {
    "no-key-id": Payload(metadata={"encoding": b"binary/encrypted"}, data=b"\x00" * 40),
    "unknown-key-id": Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k-19990101-dead"},
        data=b"\x00" * 40,
    ),
}


@pytest.mark.parametrize("payload", list(ENCRYPTED_PAYLOADS))
@pytest.mark.parametrize(
    ("suffix", "name"),
    [("", "counterparty_response"), ("/development", "sealed_deliver")],
    ids=["counterparty_response", "movement"],
)
async def test_a_payload_that_cannot_be_decrypted_is_recorded(
    site: Site, suffix: str, name: str, payload: str
) -> None:
    n = await site.in_development()
    await site.signal(f"{n.id}{suffix}", name, RawValue(ENCRYPTED_PAYLOADS[payload]), plain=True)
    await rejected(n, lambda r: r.kind == name and "cannot be read" in r.reason)
    await moves_on(n)
    await no_task_failed(site, n)


@pytest.mark.parametrize("char", ["\r\n", "\n", "\x0b", "\x85", "\u2028", "\x00"], ids=repr)
async def test_a_name_that_is_not_one_line_is_refused_at_the_edge(site: Site, char: str) -> None:
    with pytest.raises(ValidationError, match="one line"):
        make_request("automated", counterparty__name=f"Acme{char}Bcc: evil@attacker.example")
    # Participant names and addresses were checked with a pattern whose '$' let a final
    # line break through.
    for participant in (
        {"name": f"ana{char}", "role": "deal_owner", "email": "ana@fitnest.example"},
        {"name": "ana", "role": "deal_owner", "email": f"ana@fitnest.example{char}"},
    ):
        with pytest.raises(ValidationError, match="participants"):
            make_request("automated", participants=[participant])


async def test_a_raw_start_with_a_multi_line_name_fails_at_once_instead_of_stalling(
    site: Site,
) -> None:
    data = make_request("automated").model_dump(mode="json")
    data["counterparty"]["name"] = "Acme\r\nBcc: evil@attacker.example"
    handle = await site.client.start_workflow(
        "NegotiationWorkflow", data, id=data["negotiation_id"], task_queue=site.task_queue
    )
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 20)


async def test_a_huge_message_id_in_a_malformed_signal_is_stored_bounded(site: Site) -> None:
    """1.9 MB of message id, twice: recorded with a bounded id; status and the end still work."""
    n = await site.in_development()
    huge = {"message_id": "x" * 1_900_000, "sequence": "not a number", "action": "counter"}
    for _ in range(2):
        await site.signal(n.id, "counterparty_response", huge)
    status = await n.until(
        lambda s: len([r for r in s.rejected_messages if r.reason.startswith("malformed")]) == 2
    )
    assert all(
        len(r.message_id or "") <= 200 and len(r.reason) <= 1000 for r in status.rejected_messages
    )
    assert len(status.model_dump_json()) < 100_000
    await n.respond("reject", sequence=60)
    for p in n.request.participants:  # the retrospective answered, the workflow completes
        await n.until(lambda s: s.retrospective_until is not None)
        await api.answer_retrospective(
            site.client,
            n.id,
            RetrospectiveAnswer(message_id=f"retro-{p.name}", participant=p.name, satisfaction=3),
        )
    result = await asyncio.wait_for(api.get_result(site.client, n.id), 30)
    assert result.outcome.value == "rejected"
    await no_task_failed(site, n)


async def test_a_huge_signal_name_is_stored_bounded(site: Site) -> None:
    n = await site.in_development()
    await site.signal(n.id, "n" * 200, {"message_id": "y" * 500_000})
    status = await rejected(n, lambda r: r.reason.startswith("unknown signal"))
    assert all(
        len(r.kind) <= 64 and len(r.message_id or "") <= 200 for r in status.rejected_messages
    )
    await moves_on(n)


# --- erasure: every message ends applied or recorded ----------------------------------------------


async def test_messages_held_by_a_movement_at_cancel_are_recorded(site: Site) -> None:
    """A counteroffer held by the movement (its decision is pending), then a cancel: the held
    message is listed as rejected, with the reason, in the closed negotiation's status."""
    n, _ = await site.owner_deciding()
    held = await n.respond("counter", terms(49000, 10, 45))
    await n.until(lambda s: s.last_received is not None and s.last_received.message_id == held)
    await api.cancel(site.client, n.id)
    status = await n.until(lambda s: s.outcome is not None)
    assert status.outcome.value == "cancelled"
    assert [r.reason for r in status.rejected_messages if r.message_id == held] == [
        "the negotiation closed (cancelled) before it could be used"
    ]
    assert status.queued_messages == 0


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("deliver", "not an envelope"),
        ("sealed_deliver", {"body": 3}),
        ("counterparty_response", {}),
    ],
    ids=["deliver-wrong-shape", "sealed-deliver-wrong-shape", "unknown-to-the-movement"],
)
async def test_a_signal_the_movement_cannot_read_is_recorded(
    site: Site, name: str, payload: Any
) -> None:
    n = await site.in_development()
    await site.signal(f"{n.id}/development", name, payload)
    await rejected(n, lambda r: r.kind == name)
    await moves_on(n)
    await no_task_failed(site, n)


async def test_a_stale_response_while_a_decision_is_pending_is_recorded_at_once(site: Site) -> None:
    n, request_id = await site.owner_deciding()
    stale = await n.respond("counter", terms(48000, 10, 45), sequence=1)
    await rejected(n, lambda r: r.message_id == stale and r.reason.startswith("stale"))
    assert request_id in [p.request_id for p in (await n.status()).pending_decisions]


async def test_a_response_held_by_the_movement_is_counted_as_queued(site: Site) -> None:
    n, _ = await site.owner_deciding()
    await n.respond("counter", terms(49000, 10, 45))
    status = await n.until(lambda s: s.queued_messages == 1)
    assert status.rejected_messages == []


#: Where updates land: the negotiation itself, and the movement that plays (where clients send
#: ``respond`` and ``decide`` now).
UPDATE_TARGETS = pytest.mark.parametrize(
    "suffix", ["", "/development"], ids=["negotiation", "movement"]
)


@pytest.mark.parametrize("inputs", [0, 2], ids=["no-input", "two-inputs"])
@pytest.mark.parametrize("name", ["decide", "retrospective", "respond"])
@UPDATE_TARGETS
async def test_an_update_with_the_wrong_number_of_inputs_is_refused(
    site: Site, name: str, inputs: int, suffix: str
) -> None:
    """Updates are validated before anything reaches the history: refused to the caller, and
    the negotiation goes on."""
    n, request_id = await site.owner_deciding()
    args = [forged_decision(request_id, "ana"), forged_decision(request_id, "ana")][:inputs]
    with pytest.raises(WorkflowUpdateFailedError):
        await site.client.get_workflow_handle(n.id + suffix).execute_update(name, args=args)
    await owner_still_decides(n, request_id)
    await no_task_failed(site, n)


@pytest.mark.parametrize(
    "change",
    [
        {"message_id": "m" * 2_000_000},
        {"comment": "c" * 2_000_000},
        {"approver": "ana\r\nBcc: evil@attacker.example"},
        {"approver": "mallory"},
    ],
    ids=["2MB-id", "2MB-comment", "crlf-approver", "non-participant"],
)
@UPDATE_TARGETS
async def test_a_decision_update_that_cannot_be_taken_is_refused_and_changes_nothing(
    site: Site, change: dict[str, Any], suffix: str
) -> None:
    n, request_id = await site.owner_deciding()
    decision = {**forged_decision(request_id, "ana"), "verdict": "approve", **change}
    del decision["revised_terms"]
    with pytest.raises(WorkflowUpdateFailedError):
        await site.client.get_workflow_handle(n.id + suffix).execute_update("decide", decision)
    await owner_still_decides(n, request_id)
    await no_task_failed(site, n)


@pytest.mark.parametrize(
    "change",
    [
        {"message_id": "m" * 2_000_000},
        {"note": "n" * 2_000_000},
        {"action": "sign", "terms": None},
        {"sequence": 1},
        {"terms": GIVEAWAY.model_dump(mode="json") | {"discount_pct": "-5"}},
    ],
    ids=["2MB-id", "2MB-note", "not-possible-now", "stale", "malformed-terms"],
)
@UPDATE_TARGETS
async def test_a_response_update_that_cannot_be_taken_is_refused_and_changes_nothing(
    site: Site, change: dict[str, Any], suffix: str
) -> None:
    """``respond``, on the movement that plays or on the negotiation: refused to the caller
    before anything reaches the history; the status is as it was; the negotiation moves on."""
    n = await site.in_development()
    before = await n.status()
    response = {
        "message_id": f"bad-{uuid.uuid4().hex[:6]}",
        "sequence": 40,
        "action": "counter",
        "terms": COUNTER.model_dump(mode="json"),
        **change,
    }
    with pytest.raises(WorkflowUpdateFailedError):
        await site.client.get_workflow_handle(n.id + suffix).execute_update("respond", response)
    after = await n.status()
    assert (after.offers, after.rejected_messages) == (before.offers, before.rejected_messages)
    await moves_on(n)
    await no_task_failed(site, n)


async def test_cr_lf_in_a_response_id_and_note_is_taken_as_data_by_the_movement(site: Site) -> None:
    """CR/LF in the id and the note of a ``respond`` update sent to the movement: both are
    bounded text, never a header (the id is refused only beyond 128 characters); the response is
    taken as data, stored as sent, and nothing fails."""
    n = await site.in_development()
    response = {
        "message_id": "cp\r\nBcc: evil@attacker.example",
        "sequence": 40,
        "action": "counter",
        "terms": terms(51000, 10, 45).model_dump(mode="json"),
        "note": "line one\r\nBcc: evil@attacker.example",
    }
    receipt = await site.client.get_workflow_handle(f"{n.id}/development").execute_update(
        "respond", response
    )
    assert receipt["message_id"] == response["message_id"]
    status = await n.until(lambda s: s.our_terms is not None and s.our_terms.version == 5)
    assert status.offers[3].note == response["note"]
    assert status.last_received is not None
    assert status.last_received.message_id == response["message_id"]
    await no_task_failed(site, n)
