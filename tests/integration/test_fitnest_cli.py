"""End to end through the real ``fitnest`` command: start, respond, decide, status, list, simulate.

The command runs as a subprocess against the shared Temporal dev server; a real worker runs in
this process (fixture ``fitnest``). Each negotiation is an example request with a fresh id, and
the counterparty's messages are the files in ``examples/responses``, as they are. Independent
negotiations run concurrently to keep the module fast.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
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

SUPPLIER = "conductor_led_supplier.json"  # conductor_led; deal owner mara; no executive
ENTERPRISE = "collaborative_ensemble_enterprise.json"  # ensemble; ana, lee, fay, eve, ivo
RENEWAL = "automated_renewal.json"  # automated (chosen by policy); ana, lee, fay, ivo
REVISED = EXAMPLES / "terms_revised.json"
COLUMNS = ["STATUS", "MOVEMENT", "PLAYBOOK", "OUTCOME", "AWAITING"]  # of `fitnest list`


def _counter_terms(name: str) -> Terms:
    return Terms.model_validate(json.loads((RESPONSES / name).read_text())["terms"])


def _our_version(version: int) -> Callable[[NegotiationStatus], bool]:
    return lambda s: s.our_terms is not None and s.our_terms.version == version


def _sent(cli: Fitnest, nid: str) -> list[tuple[str, str, str]]:
    return [(str(m["X-Fitnest-Kind"]), str(m["To"]), str(m["Subject"])) for m in cli.mail(nid)]


def _assert_opening_offer_and_handoff(cli: Fitnest, nid: str, counterparty: str, team: str) -> None:
    """The outbox holds the opening offer to the counterparty and one hand-off to the team."""
    opening = [
        m
        for m in cli.mail_of_kind(nid, "offer")
        if str(m["Subject"]).startswith("Our opening offer (version 1)")
    ]
    assert [m["To"] for m in opening] == [counterparty], _sent(cli, nid)
    handoff = cli.mail_of_kind(nid, "handoff")
    assert [m["To"] for m in handoff] == [team], _sent(cli, nid)
    assert str(handoff[0]["Subject"]).startswith("Signed:")
    assert "is signed. Agreed terms" in handoff[0].get_content()


# --- starting -------------------------------------------------------------------------------------


async def test_start_prints_the_id_and_starting_the_same_file_again_starts_nothing(
    fitnest: Fitnest, dev_env: WorkflowEnvironment
) -> None:
    nid, path = fitnest.request(SUPPLIER, "dup")
    first = await fitnest.ok("start", path)
    assert first.out == f"{nid}\n"
    before = await dev_env.client.get_workflow_handle(nid).describe()

    again = await fitnest("start", path)

    assert again.rc == 1, str(again)
    assert again.out == ""
    assert f"negotiation {nid} already exists; nothing was started" in again.err, str(again)
    after = await dev_env.client.get_workflow_handle(nid).describe()
    assert (after.run_id, after.status) == (before.run_id, WorkflowExecutionStatus.RUNNING)
    await fitnest.ok("cancel", nid)
    assert (await fitnest.closed(nid)).outcome == Outcome.CANCELLED


async def test_an_invalid_request_prints_field_errors_exits_2_and_starts_nothing(
    fitnest: Fitnest,
) -> None:
    fields_id, fields_file = fitnest.request(
        SUPPLIER,
        "bad-fields",
        currency="euro",
        counterparty__email="sales-at-contoso",
        opening_terms__payment_days=-5,
    )
    beyond_id, beyond_file = fitnest.request(
        SUPPLIER, "bad-opening", opening_terms__total_contract_value="230000"
    )
    past_id, past_file = fitnest.request(
        SUPPLIER, "bad-deadline", mandate__deadline="2020-01-01T00:00:00Z"
    )
    syntax_file = fitnest.write("bad-syntax.json", '{"negotiation_id": "bad-syntax",')

    runs = await asyncio.gather(
        *(fitnest("start", f) for f in (fields_file, beyond_file, past_file, syntax_file))
    )

    for run in runs:
        assert (run.rc, run.out) == (2, ""), str(run)
    fields, opening, deadline, syntax = (r.err for r in runs)
    assert f"{fields_file} is not a valid NegotiationRequest:" in fields
    assert "  - currency: String should match pattern" in fields, fields
    assert re.search(r"  - counterparty\.email: .*not an e-mail address", fields), fields
    assert "  - opening_terms.payment_days: Input should be greater than or equal to 0" in fields
    assert "opening terms lie beyond the walk-away on: total_contract_value" in opening, opening
    assert "mandate.deadline" in deadline and "is already past" in deadline, deadline
    assert "is not valid JSON or YAML" in syntax, syntax

    lookups = await asyncio.gather(
        *(fitnest("status", n) for n in (fields_id, beyond_id, past_id, "bad-syntax"))
    )
    for run in lookups:
        assert run.rc == 3 and "no negotiation" in run.err, str(run)


# --- each playbook to an agreement ---------------------------------------------------------------


async def _conductor_led_agreed(cli: Fitnest) -> None:
    """The deal owner answers the counteroffer with revised terms; they accept; both sign."""
    nid, path = cli.request(SUPPLIER, "conductor")
    assert (await cli.ok("start", path)).out == f"{nid}\n"
    await cli.ok("respond", nid, RESPONSES / "supplier_counter_within_mandate.json")
    ask = await cli.pending(nid, "deal_owner", "counteroffer")
    s = await cli.status(nid)
    assert s.playbook == PlaybookName.CONDUCTOR_LED
    # Within the mandate, yet the counteroffer is hers to decide, and hers alone.
    assert [p.role for p in s.pending_decisions] == [Role.DEAL_OWNER]

    run = await cli.decide(
        nid, ask.request_id, "mara", "revise", "--terms", REVISED, "--comment", "meet us halfway"
    )
    assert run.rc == 0, str(run)
    receipt = DecisionReceipt.model_validate_json(run.out)
    assert (receipt.request_id, receipt.approver) == (ask.request_id, "mara")
    assert (receipt.verdict, receipt.terms_version) == (Verdict.REVISE, 2)
    s = await cli.until(nid, _our_version(3), "sent our revision")
    revised = Terms.model_validate_json(REVISED.read_text())
    assert s.our_terms is not None and s.our_terms.terms == revised

    await cli.ok("respond", nid, RESPONSES / "accept.json")
    signature = await cli.pending(nid, "deal_owner", "signature")
    await cli.approve(nid, signature.request_id, "mara")
    await cli.until(nid, lambda s: not s.pending_decisions, "signed by us")
    await cli.ok("respond", nid, RESPONSES / "sign.json")
    s = await cli.closed(nid)

    assert s.outcome == Outcome.AGREED, s.model_dump_json(indent=1)
    assert s.agreed_terms is not None
    assert (s.agreed_terms.party, s.agreed_terms.terms) == (Party.US, revised)
    assert [(d.kind, d.approver) for d in s.decisions] == [
        (DecisionKind.COUNTEROFFER, "mara"),
        (DecisionKind.SIGNATURE, "mara"),
    ]
    _assert_opening_offer_and_handoff(cli, nid, "sales@contoso.example", "ivo@fitnest.example")
    # The decision request tells the deal owner how to answer it.
    requests = cli.mail_of_kind(nid, "decision_request")
    to_mara = [m for m in requests if m["To"] == "mara@fitnest.example"]
    command = f"fitnest decide {nid} {ask.request_id} --approver NAME"
    assert any(command in m.get_content() for m in to_mara), _sent(cli, nid)


async def _ensemble_agreed(cli: Fitnest) -> None:
    """Every required role approves the counteroffer; counsel signs off; we and they sign."""
    nid, path = cli.request(ENTERPRISE, "ensemble")
    assert (await cli.ok("start", path)).out == f"{nid}\n"
    await cli.ok("respond", nid, RESPONSES / "enterprise_counter_within_mandate.json")
    s = await cli.until(nid, lambda s: len(s.pending_decisions) == 4, "asked every role at once")
    assert s.playbook == PlaybookName.COLLABORATIVE_ENSEMBLE
    assert all(p.kind == DecisionKind.COUNTEROFFER for p in s.pending_decisions)
    approver = {Role.DEAL_OWNER: "ana", Role.LEGAL: "lee", Role.FINANCE: "fay"}
    approver[Role.EXECUTIVE] = "eve"
    assert {p.role for p in s.pending_decisions} == set(approver)

    *first, last = s.pending_decisions
    await asyncio.gather(*(cli.approve(nid, p.request_id, approver[p.role]) for p in first))
    s = await cli.status(nid)
    assert s.movement == Movement.DEVELOPMENT and s.agreed_terms is None  # one still to concur
    assert [p.request_id for p in s.pending_decisions] == [last.request_id]
    await cli.approve(nid, last.request_id, approver[last.role])

    # The agreed terms carry 'mfn' and a cap above 1x: fallbacks counsel must sign off.
    signoff = await cli.pending(nid, "legal", "legal_signoff")
    await cli.approve(nid, signoff.request_id, "lee")
    signature = await cli.pending(nid, "deal_owner", "signature")
    await cli.approve(nid, signature.request_id, "ana")
    await cli.until(nid, lambda s: not s.pending_decisions, "signed by us")
    await cli.ok("respond", nid, RESPONSES / "sign.json")
    s = await cli.closed(nid)

    assert s.outcome == Outcome.AGREED, s.model_dump_json(indent=1)
    assert s.agreed_terms is not None
    assert s.agreed_terms.terms == _counter_terms("enterprise_counter_within_mandate.json")
    assert sorted(d.approver for d in s.decisions) == ["ana", "ana", "eve", "fay", "lee", "lee"]
    _assert_opening_offer_and_handoff(
        cli, nid, "procurement@fabrikam.example", "ivo@fitnest.example"
    )


async def _automated_agreed(cli: Fitnest) -> None:
    """The strategy counters without asking anyone; they accept and sign; policy signs for us."""
    nid, path = cli.request(RENEWAL, "automated")
    assert (await cli.ok("start", path)).out == f"{nid}\n"
    await cli.until(nid, _our_version(1), "sent the opening offer")
    await cli.ok("respond", nid, RESPONSES / "renewal_counter_within_mandate.json")
    s = await cli.until(nid, _our_version(3), "countered")
    assert s.playbook == PlaybookName.AUTOMATED
    assert s.pending_decisions == [] and s.decisions == []
    assert s.our_terms is not None
    assert s.our_terms.terms.total_contract_value == 55000  # half the gap from 60k to their 50k
    await cli.ok("respond", nid, RESPONSES / "accept.json")
    await cli.until(nid, lambda s: s.movement == Movement.CLOSURE, "entered closure")
    await cli.ok("respond", nid, RESPONSES / "sign.json")
    s = await cli.closed(nid)

    assert s.outcome == Outcome.AGREED, s.model_dump_json(indent=1)
    assert s.agreed_terms is not None and s.agreed_terms.version == 3
    assert [d.approver for d in s.decisions] == ["policy"]  # signed within policy: nobody asked
    _assert_opening_offer_and_handoff(
        cli, nid, "procurement@northwind.example", "ivo@fitnest.example"
    )


async def test_each_playbook_plays_a_negotiation_to_agreed(fitnest: Fitnest) -> None:
    await asyncio.gather(
        _conductor_led_agreed(fitnest), _ensemble_agreed(fitnest), _automated_agreed(fitnest)
    )


# --- the other endings ----------------------------------------------------------------------------


async def _walked_away(cli: Fitnest) -> None:
    """A wrong approver is refused with the reason; the owner rejects; late messages are refused."""
    nid, path = cli.request(SUPPLIER, "walk")
    await cli.ok("start", path)
    await cli.ok("respond", nid, RESPONSES / "supplier_counter_beyond_walk_away.json")
    ask = await cli.pending(nid, "deal_owner", "counteroffer")

    wrong = await cli.decide(nid, ask.request_id, "lee", "approve")
    assert wrong.rc == 1, str(wrong)
    assert "decision rejected: lee holds the role legal; this request needs deal_owner" in wrong.err
    stranger = await cli.decide(nid, ask.request_id, "mallory", "approve")
    assert stranger.rc == 1 and "mallory is not a participant" in stranger.err, str(stranger)
    assert [p.request_id for p in (await cli.status(nid)).pending_decisions] == [ask.request_id]

    run = await cli.decide(nid, ask.request_id, "mara", "reject", "--comment", "too dear")
    assert run.rc == 0, str(run)
    s = await cli.closed(nid)
    assert s.outcome == Outcome.WALKED_AWAY, s.model_dump_json(indent=1)
    assert "mara rejected the counterparty's terms" in s.outcome_reason
    assert cli.mail_of_kind(nid, "outcome"), _sent(cli, nid)  # we told the counterparty

    # Closed, although the workflow stays open for the retrospective: nothing more is taken.
    late = await cli.decide(nid, ask.request_id, "mara", "approve")
    assert late.rc == 1 and "closed" in late.err, str(late)
    late_response = await cli("respond", nid, RESPONSES / "accept.json")
    assert late_response.rc == 1 and "closed" in late_response.err, str(late_response)
    late_cancel = await cli("cancel", nid)
    assert late_cancel.rc == 1 and "closed" in late_cancel.err, str(late_cancel)
    assert late_cancel.out == "", str(late_cancel)  # not "cancellation requested"


async def _rejected(cli: Fitnest) -> None:
    """They reject at once; the response may even arrive before the opening offer is out."""
    nid, path = cli.request(RENEWAL, "reject")
    await cli.ok("start", path)
    await cli.ok("respond", nid, RESPONSES / "reject.json")
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
    """Nobody answers the opening offer; ``fitnest status`` shows it expire at the deadline."""
    # Room for `fitnest start` to start on a loaded 2-core machine (6 s were too few in CI).
    deadline = datetime.now(UTC) + timedelta(seconds=15)
    nid, path = cli.request(RENEWAL, "expire", mandate__deadline=deadline.isoformat())
    await cli.ok("start", path)
    s = await cli.until(nid, lambda s: s.outcome is not None, "ended", poll_with_cli=True)
    assert s.outcome == Outcome.EXPIRED, s.model_dump_json(indent=1)
    assert s.movement == Movement.OPENING
    assert s.outcome_reason == "no response to the opening offer before the deadline"
    assert s.closed_at is not None and s.closed_at >= deadline - timedelta(milliseconds=50)


async def test_negotiations_end_walked_away_rejected_withdrawn_and_expired(
    fitnest: Fitnest,
) -> None:
    await asyncio.gather(
        _walked_away(fitnest), _rejected(fitnest), _withdrawn(fitnest), _expired(fitnest)
    )


# --- reading --------------------------------------------------------------------------------------


async def test_status_names_the_movement_and_the_pending_decisions(fitnest: Fitnest) -> None:
    nid, path = fitnest.request(SUPPLIER, "status")
    await fitnest.ok("start", path)
    await fitnest.ok("respond", nid, RESPONSES / "supplier_counter_within_mandate.json")
    ask = await fitnest.pending(nid, "deal_owner", "counteroffer")

    text = (await fitnest.ok("status", nid)).out

    assert f"Negotiation {nid} with Contoso Components (supplier)" in text
    assert re.search(r"playbook:\s+conductor_led\n", text), text
    assert re.search(r"movement:\s+development\s+round: 1\n", text), text
    assert re.search(r"outcome:\s+open\n", text), text
    assert "  waiting for:\n" in text, text
    line = f"    {ask.request_id}: deal_owner (counteroffer, v2, due "
    assert line in text and "the deal owner decides every counteroffer" in text, text
    await fitnest.ok("cancel", nid)


async def test_list_shows_the_negotiations_with_playbook_and_outcome(fitnest: Fitnest) -> None:
    open_id, open_file = fitnest.request(SUPPLIER, "list-open")
    done_id, done_file = fitnest.request(RENEWAL, "list-done")
    await asyncio.gather(fitnest.ok("start", open_file), fitnest.ok("start", done_file))
    await fitnest.ok("respond", done_id, RESPONSES / "reject.json")
    await fitnest.closed(done_id)
    await fitnest.until(open_id, lambda s: s.playbook is not None, "chose its playbook")
    expected = {  # by COLUMNS, after the id
        open_id: ["running", "opening", "conductor_led", "-", "-"],
        done_id: ["running", "opening", "automated", "rejected", "-"],  # in its retrospective
    }
    query = f"WorkflowId = '{open_id}' OR WorkflowId = '{done_id}'"

    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while True:  # the visibility store catches up eventually
        run = await fitnest.ok("list", "--query", query)
        header, *lines = run.out.splitlines()
        rows = {cells[0]: cells[1:] for cells in (line.split() for line in lines)}
        if rows == expected or loop.time() > end:
            break
        await asyncio.sleep(0.5)

    assert header.split() == ["NEGOTIATION", *COLUMNS]
    assert rows == expected, run.out
    await fitnest.ok("cancel", open_id)


async def test_simulate_drives_a_fresh_negotiation_to_an_outcome(fitnest: Fitnest) -> None:
    run = await fitnest.ok("simulate", "--request", EXAMPLES / RENEWAL, "--max-seconds", "40")

    started = re.search(r"^started (renewal-northwind-2027-sim-\S+)$", run.out, re.MULTILINE)
    assert started, str(run)
    nid = started.group(1)
    ended = re.search(rf"^{re.escape(nid)}: (\S+) after (\d+) rounds$", run.out, re.MULTILINE)
    assert ended and ended.group(1) == Outcome.AGREED.value, str(run)
    s: NegotiationStatus = await fitnest.status(nid)
    assert s.outcome == Outcome.AGREED
    assert s.round == int(ended.group(2)) >= 1
