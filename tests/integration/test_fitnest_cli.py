"""End to end through the real ``fitnest`` command: start, respond, decide, status, list, simulate.

The command runs as a subprocess against the shared Temporal dev server; a real worker runs in
this process (fixture ``fitnest``). Each negotiation is an example request with a fresh id.
Independent negotiations run concurrently to keep the module fast.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from negotiation.models import (
    DecisionKind,
    DecisionReceipt,
    Movement,
    NegotiationStatus,
    Outcome,
    PlaybookName,
    Role,
    Verdict,
)
from negotiation.terms import Party, Terms
from tests.integration.fitnest_cli import EXAMPLES, RESPONSES, Fitnest

pytestmark = pytest.mark.integration

SUPPLIER = "conductor_led_supplier.json"
ENTERPRISE = "collaborative_ensemble_enterprise.json"
RENEWAL = "automated_renewal.json"


def _terms(path: str) -> Terms:
    data = json.loads((RESPONSES / path).read_text())
    return Terms.model_validate(data["terms"])


def _opened(s: NegotiationStatus) -> bool:
    return s.our_terms is not None and s.our_terms.version == 1


def _assert_opening_and_handoff(cli: Fitnest, nid: str, counterparty: str, team: str) -> None:
    opening = cli.mail_of_kind(nid, "offer")
    assert any(str(m["Subject"]).startswith("Our opening offer") and m["To"] == counterparty for m in opening), [
        (m["Subject"], m["To"]) for m in cli.mail(nid)
    ]
    handoff = cli.mail_of_kind(nid, "handoff")
    assert len(handoff) == 1, [(m["Subject"], m["To"]) for m in cli.mail(nid)]
    assert handoff[0]["To"] == team
    assert str(handoff[0]["Subject"]).startswith("Signed:")


# --- starting -----------------------------------------------------------------------------------


async def test_start_prints_the_id_and_starting_the_same_file_again_starts_nothing(
    fitnest: Fitnest, dev_env: WorkflowEnvironment
) -> None:
    nid, path = fitnest.request(SUPPLIER, "dup")
    first = await fitnest.ok("start", path)
    assert first.out.strip() == nid
    before = await dev_env.client.get_workflow_handle(nid).describe()

    again = await fitnest("start", path)

    assert again.rc == 1, str(again)
    assert again.out == ""
    assert "already exists" in again.err and "nothing was started" in again.err, str(again)
    after = await dev_env.client.get_workflow_handle(nid).describe()
    assert after.run_id == before.run_id
    assert after.status == WorkflowExecutionStatus.RUNNING
    await fitnest.ok("cancel", nid)
    s = await fitnest.closed(nid)
    assert s.outcome == Outcome.CANCELLED


async def test_an_invalid_request_prints_field_errors_exits_2_and_starts_nothing(fitnest: Fitnest) -> None:
    bad_fields, bad_fields_path = fitnest.request(
        SUPPLIER, "bad-fields",
        currency="euro",
        counterparty__email="sales-at-contoso",
        opening_terms__payment_days=-5,
    )
    beyond, beyond_path = fitnest.request(SUPPLIER, "bad-opening", opening_terms__total_contract_value="230000")
    past, past_path = fitnest.request(SUPPLIER, "bad-deadline", mandate__deadline="2020-01-01T00:00:00Z")
    not_json = fitnest.write("not-json.json", '{"negotiation_id": "bad-syntax",')

    runs = await asyncio.gather(
        fitnest("start", bad_fields_path), fitnest("start", beyond_path), fitnest("start", past_path),
        fitnest("start", not_json),
    )

    for run in runs:
        assert run.rc == 2, str(run)
        assert run.out == "", str(run)
    fields, opening, deadline, syntax = (r.err for r in runs)
    assert "is not a valid NegotiationRequest" in fields
    assert re.search(r"- currency: String should match pattern", fields), fields
    assert re.search(r"- counterparty\.email: .*not an e-mail address", fields), fields
    assert re.search(r"- opening_terms\.payment_days: Input should be greater than or equal to 0", fields), fields
    assert "opening terms lie beyond the walk-away on: total_contract_value" in opening
    assert "mandate.deadline" in deadline and "already past" in deadline
    assert "not valid JSON or YAML" in syntax

    lookups = await asyncio.gather(*(fitnest("status", n) for n in (bad_fields, beyond, past, "bad-syntax")))
    for run in lookups:
        assert run.rc == 3, str(run)
        assert "no negotiation" in run.err


# --- each playbook to an agreement -------------------------------------------------------------------


async def _conductor_led_agreed(cli: Fitnest) -> None:
    """The deal owner answers the counteroffer with revised terms; they accept; both sign."""
    nid, path = cli.request(SUPPLIER, "conductor")
    assert (await cli.ok("start", path)).out.strip() == nid
    await cli.until(nid, _opened, "sent the opening offer")
    await cli.ok("respond", nid, RESPONSES / "supplier_counter_within_mandate.json")
    ask = await cli.pending(nid, "deal_owner", "counteroffer")
    s = await cli.status(nid)
    assert s.playbook == PlaybookName.CONDUCTOR_LED
    assert [p.role for p in s.pending_decisions] == [Role.DEAL_OWNER]  # within the mandate: still hers alone
    request_mail = cli.mail_of_kind(nid, "decision_request")
    assert any(f"fitnest decide {nid} {ask.request_id}" in m.get_payload() for m in request_mail)

    run = await cli.ok(
        "decide", nid, ask.request_id, "--approver", "mara", "--verdict", "revise",
        "--terms", EXAMPLES / "terms_revised.json", "--comment", "meet us in the middle",
    )
    receipt = DecisionReceipt.model_validate_json(run.out)
    assert (receipt.request_id, receipt.approver, receipt.verdict) == (ask.request_id, "mara", Verdict.REVISE)
    revised = Terms.model_validate_json((EXAMPLES / "terms_revised.json").read_text())
    s = await cli.until(nid, lambda s: s.our_terms is not None and s.our_terms.version == 3, "sent our revision")
    assert s.our_terms is not None and s.our_terms.terms == revised

    await cli.ok("respond", nid, RESPONSES / "accept.json")
    signature = await cli.pending(nid, "deal_owner", "signature")
    await cli.ok("decide", nid, signature.request_id, "--approver", "mara", "--verdict", "approve")
    await cli.until(nid, lambda s: s.movement == Movement.CLOSURE and not s.pending_decisions, "signed by us")
    await cli.ok("respond", nid, RESPONSES / "sign.json")
    s = await cli.closed(nid)

    assert s.outcome == Outcome.AGREED, s.model_dump_json(indent=1)
    assert s.agreed_terms is not None and s.agreed_terms.party == Party.US and s.agreed_terms.terms == revised
    assert [(d.kind, d.approver) for d in s.decisions] == [
        (DecisionKind.COUNTEROFFER, "mara"), (DecisionKind.SIGNATURE, "mara"),
    ]
    _assert_opening_and_handoff(cli, nid, "sales@contoso.example", "ivo@fitnest.example")


async def _ensemble_agreed(cli: Fitnest) -> None:
    """Every required role approves the counteroffer; counsel signs off; we and they sign."""
    nid, path = cli.request(ENTERPRISE, "ensemble")
    assert (await cli.ok("start", path)).out.strip() == nid
    await cli.until(nid, _opened, "sent the opening offer")
    await cli.ok("respond", nid, RESPONSES / "enterprise_counter_within_mandate.json")
    s = await cli.until(nid, lambda s: len(s.pending_decisions) == 4, "asked every required role")
    assert s.playbook == PlaybookName.COLLABORATIVE_ENSEMBLE
    assert {p.role for p in s.pending_decisions} == {Role.DEAL_OWNER, Role.LEGAL, Role.FINANCE, Role.EXECUTIVE}
    assert all(p.kind == DecisionKind.COUNTEROFFER for p in s.pending_decisions)
    approver = {Role.DEAL_OWNER: "ana", Role.LEGAL: "lee", Role.FINANCE: "fay", Role.EXECUTIVE: "eve"}
    *first, last = s.pending_decisions
    await asyncio.gather(
        *(cli.ok("decide", nid, p.request_id, "--approver", approver[p.role], "--verdict", "approve") for p in first)
    )
    s = await cli.status(nid)
    assert s.movement == Movement.DEVELOPMENT and s.agreed_terms is None  # one role still to concur
    assert [p.request_id for p in s.pending_decisions] == [last.request_id]
    await cli.ok("decide", nid, last.request_id, "--approver", approver[last.role], "--verdict", "approve")

    signoff = await cli.pending(nid, "legal", "legal_signoff")  # 'mfn' and the higher cap are fallbacks
    await cli.ok("decide", nid, signoff.request_id, "--approver", "lee", "--verdict", "approve")
    signature = await cli.pending(nid, "deal_owner", "signature")
    await cli.ok("decide", nid, signature.request_id, "--approver", "ana", "--verdict", "approve")
    await cli.until(nid, lambda s: not s.pending_decisions, "signed by us")
    await cli.ok("respond", nid, RESPONSES / "sign.json")
    s = await cli.closed(nid)

    assert s.outcome == Outcome.AGREED, s.model_dump_json(indent=1)
    assert s.agreed_terms is not None and s.agreed_terms.terms == _terms("enterprise_counter_within_mandate.json")
    assert sorted(d.approver for d in s.decisions) == ["ana", "ana", "eve", "fay", "lee", "lee"]
    _assert_opening_and_handoff(cli, nid, "procurement@fabrikam.example", "ivo@fitnest.example")


async def _automated_agreed(cli: Fitnest) -> None:
    """The strategy counters without asking anyone; they accept and sign; policy signs for us."""
    nid, path = cli.request(RENEWAL, "automated")
    assert (await cli.ok("start", path)).out.strip() == nid
    await cli.until(nid, _opened, "sent the opening offer")
    await cli.ok("respond", nid, RESPONSES / "renewal_counter_within_mandate.json")
    s = await cli.until(nid, lambda s: s.our_terms is not None and s.our_terms.version == 3, "countered")
    assert s.playbook == PlaybookName.AUTOMATED
    assert s.pending_decisions == [] and s.decisions == []
    assert s.our_terms is not None and s.our_terms.terms.total_contract_value == 55000  # half the gap
    await cli.ok("respond", nid, RESPONSES / "accept.json")
    await cli.until(nid, lambda s: s.movement == Movement.CLOSURE, "entered closure")
    await cli.ok("respond", nid, RESPONSES / "sign.json")
    s = await cli.closed(nid)

    assert s.outcome == Outcome.AGREED, s.model_dump_json(indent=1)
    assert s.agreed_terms is not None and s.agreed_terms.version == 3
    assert [d.approver for d in s.decisions] == ["policy"]  # signed within policy, no person asked
    _assert_opening_and_handoff(cli, nid, "procurement@northwind.example", "ivo@fitnest.example")


async def test_each_playbook_plays_a_negotiation_to_agreed(fitnest: Fitnest) -> None:
    await asyncio.gather(_conductor_led_agreed(fitnest), _ensemble_agreed(fitnest), _automated_agreed(fitnest))


# --- the other endings ----------------------------------------------------------------------------


async def _walked_away(cli: Fitnest, dev_env: WorkflowEnvironment) -> None:
    """A wrong approver is refused with the reason; the deal owner rejects; late decisions are refused."""
    nid, path = cli.request(SUPPLIER, "walk")
    await cli.ok("start", path)
    await cli.ok("respond", nid, RESPONSES / "supplier_counter_beyond_walk_away.json")
    ask = await cli.pending(nid, "deal_owner", "counteroffer")

    wrong = await cli("decide", nid, ask.request_id, "--approver", "lee", "--verdict", "approve")
    assert wrong.rc == 1, str(wrong)
    assert "decision rejected: lee holds the role legal; this request needs deal_owner" in wrong.err, str(wrong)
    stranger = await cli("decide", nid, ask.request_id, "--approver", "mallory", "--verdict", "approve")
    assert stranger.rc == 1 and "mallory is not a participant" in stranger.err, str(stranger)

    await cli.ok("decide", nid, ask.request_id, "--approver", "mara", "--verdict", "reject", "--comment", "too dear")
    s = await cli.closed(nid)
    assert s.outcome == Outcome.WALKED_AWAY, s.model_dump_json(indent=1)
    assert "mara rejected" in s.outcome_reason
    await dev_env.client.get_workflow_handle(nid).result()  # completed, not just decided

    late = await cli("decide", nid, ask.request_id, "--approver", "mara", "--verdict", "approve")
    assert late.rc == 1, str(late)
    assert "closed" in late.err, str(late)
    late_response = await cli("respond", nid, RESPONSES / "accept.json")
    assert late_response.rc == 1 and "closed" in late_response.err, str(late_response)


async def _rejected(cli: Fitnest) -> None:
    nid, path = cli.request(RENEWAL, "reject")
    await cli.ok("start", path)
    await cli.ok("respond", nid, RESPONSES / "reject.json")  # may arrive before the opening offer is out
    s = await cli.closed(nid)
    assert s.outcome == Outcome.REJECTED, s.model_dump_json(indent=1)
    assert s.outcome_reason == "the counterparty rejected the opening offer"


async def _withdrawn(cli: Fitnest) -> None:
    nid, path = cli.request(ENTERPRISE, "withdraw")
    await cli.ok("start", path)
    await cli.ok("respond", nid, RESPONSES / "withdraw.json")
    s = await cli.closed(nid)
    assert s.outcome == Outcome.WITHDRAWN, s.model_dump_json(indent=1)


async def _expired(cli: Fitnest) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=6)
    nid, path = cli.request(RENEWAL, "expire", mandate__deadline=deadline.isoformat())
    await cli.ok("start", path)
    s = await cli.until(nid, lambda s: s.outcome is not None, "expired", timeout=25, interval=0.5)
    assert s.outcome == Outcome.EXPIRED, s.model_dump_json(indent=1)
    assert s.movement == Movement.OPENING
    assert s.closed_at is not None and s.closed_at >= deadline - timedelta(milliseconds=50)


async def test_negotiations_end_walked_away_rejected_withdrawn_and_expired(
    fitnest: Fitnest, dev_env: WorkflowEnvironment
) -> None:
    await asyncio.gather(
        _walked_away(fitnest, dev_env), _rejected(fitnest), _withdrawn(fitnest), _expired(fitnest)
    )


# --- reading ---------------------------------------------------------------------------------------


async def test_status_names_the_movement_and_the_pending_decisions(fitnest: Fitnest) -> None:
    nid, path = fitnest.request(SUPPLIER, "status")
    await fitnest.ok("start", path)
    await fitnest.ok("respond", nid, RESPONSES / "supplier_counter_within_mandate.json")
    ask = await fitnest.pending(nid, "deal_owner", "counteroffer")

    text = (await fitnest.ok("status", nid)).out

    assert f"Negotiation {nid} with Contoso Components (supplier)" in text
    assert re.search(r"playbook:\s+conductor_led", text), text
    assert re.search(r"movement:\s+development\s+round: 1", text), text
    assert re.search(r"outcome:\s+open", text), text
    assert "waiting for:" in text
    assert f"{ask.request_id}: deal_owner (counteroffer, v2" in text, text
    assert "the deal owner decides every counteroffer" in text
    await fitnest.ok("cancel", nid)


async def test_list_shows_the_negotiations_with_playbook_and_outcome(fitnest: Fitnest) -> None:
    open_id, open_path = fitnest.request(SUPPLIER, "list-open")
    done_id, done_path = fitnest.request(RENEWAL, "list-done")
    await asyncio.gather(fitnest.ok("start", open_path), fitnest.ok("start", done_path))
    await fitnest.ok("respond", done_id, RESPONSES / "reject.json")
    await fitnest.closed(done_id)
    await fitnest.until(open_id, lambda s: s.playbook is not None, "chose its playbook")
    query = f"WorkflowId = '{open_id}' OR WorkflowId = '{done_id}'"

    rows: dict[str, list[str]] = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while True:  # visibility is eventually consistent
        run = await fitnest.ok("list", "--query", query)
        rows = {line.split()[0]: line.split() for line in run.out.splitlines()[1:] if line.strip()}
        expected = {
            open_id: ["running", "opening", "conductor_led", "-"],
            done_id: ["completed", "opening", "automated", "rejected"],
        }
        if all(rows.get(k, [])[1:5] == v for k, v in expected.items()) or loop.time() > end:
            break
        await asyncio.sleep(0.5)
    assert run.out.splitlines()[0].split() == ["NEGOTIATION", "STATUS", "MOVEMENT", "PLAYBOOK", "OUTCOME", "AWAITING"]
    assert rows.get(open_id, [])[1:5] == ["running", "opening", "conductor_led", "-"], run.out
    assert rows.get(done_id, [])[1:5] == ["completed", "opening", "automated", "rejected"], run.out
    await fitnest.ok("cancel", open_id)


async def test_simulate_drives_a_fresh_negotiation_to_an_outcome(fitnest: Fitnest) -> None:
    run = await fitnest.ok("simulate", "--request", EXAMPLES / RENEWAL, "--max-seconds", "40")

    started = re.search(r"^started (\S+)$", run.out, re.MULTILINE)
    assert started, str(run)
    nid = started.group(1)
    assert nid.startswith("renewal-northwind-2027-sim-")
    ended = re.search(rf"^{re.escape(nid)}: (\S+) after (\d+) rounds$", run.out, re.MULTILINE)
    assert ended, str(run)
    assert ended.group(1) == Outcome.AGREED.value, str(run)
    s = await fitnest.status(nid)
    assert s.outcome == Outcome.AGREED
    assert s.round == int(ended.group(2)) >= 1
