"""The UI's own rules, without servers: secrets, the directory, who may take a decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from negotiation.models import (
    DecisionKind,
    DecisionRecord,
    Movement,
    NegotiationRequest,
    NegotiationStatus,
    PendingDecision,
    Role,
    Verdict,
)
from negotiation.report import aggregate
from negotiation.terms import Offer, Party, Terms
from ui.charts import Bar, bar_chart
from ui.directory import (
    Approver,
    Directory,
    DirectoryError,
    hash_secret,
    load_directory,
    verify_secret,
)
from ui.inbox import InboxFilterError, InboxFilters, InboxItem, PageTokens
from ui.kpi_charts import _cycle_unit, kpi_charts
from ui.negotiations import entitlement
from ui.oidc import OidcConfig
from ui.sessions import SessionStore
from ui.sessions import _digest as _session_digest
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2027, 1, 4, 9, tzinfo=UTC)


def test_secrets_are_stored_salted_and_verified_in_constant_time():
    one, two = hash_secret("pw"), hash_secret("pw")
    assert one != two and "pw" not in one
    assert verify_secret("pw", one) and verify_secret("pw", two)
    assert not verify_secret("pW", one)
    assert not verify_secret("pw", "not-a-hash")


def test_the_demo_directory_signs_in_the_demo_deal_owner_of_the_demo_negotiation():
    directory = load_directory(ROOT / "ui" / "demo" / "approvers.yaml")
    ana = directory.authenticate("ana", "fitnest-demo")
    assert ana is not None and ana.role == Role.DEAL_OWNER
    request = NegotiationRequest.model_validate_json(
        (ROOT / "ui" / "demo" / "renewal_for_approval.json").read_text()
    )
    card = request.participant(ana.participant)
    assert (
        card is not None and card.role == ana.role and card.authority_limit == ana.authority_limit
    )
    assert directory.authenticate("ana", "wrong") is None
    assert directory.api_key("demo-backend.fitnest-demo-key") is not None
    assert directory.api_key("demo-backend.") is None


def test_an_invalid_directory_is_refused_naming_the_field(tmp_path: Path):
    path = tmp_path / "d.yaml"
    path.write_text("approvers:\n  - user: ana\n    role: pilot\n")
    with pytest.raises(DirectoryError, match=r"approvers\.0\.role"):
        load_directory(path)
    with pytest.raises(DirectoryError, match="cannot read"):
        load_directory(tmp_path / "missing.yaml")


def test_inbox_filters_refuse_values_that_could_break_the_query():
    with pytest.raises(InboxFilterError, match="quotes"):
        InboxFilters(roles=["deal_owner"], counterparty="x') OR ('1'='1").query()
    with pytest.raises(InboxFilterError, match="quotes"):
        InboxFilters(roles=["deal_owner"], task_queue="q' OR '1'='1").query()
    assert "TaskQueue = 'negotiations'" in InboxFilters(task_queue="negotiations").query()
    with pytest.raises(InboxFilterError, match="unknown playbook"):
        InboxFilters(roles=["deal_owner"], playbook="jazz").query()


def _request() -> NegotiationRequest:
    data = json.loads((ROOT / "ui" / "demo" / "renewal_for_approval.json").read_text())
    data["participants"].append(
        {"name": "eve", "role": "executive", "authority_limit": "5000000", "email": "eve@x.example"}
    )
    return NegotiationRequest.model_validate(data)


def _approver(name: str, role: Role, limit: str) -> Approver:
    return Approver(
        user=name, participant=name, role=role, authority_limit=Decimal(limit), password_hash="x"
    )


def _status_after_ana_revised() -> NegotiationStatus:
    """Ana revised the counterparty's v2 into our v3; an escalation on v3 waits."""
    terms = Terms(total_contract_value=Decimal("55000.00"))
    return NegotiationStatus(
        negotiation_id="n",
        deal_type="renewal",
        counterparty="Northwind Traders",
        currency="EUR",
        movement=Movement.DEVELOPMENT,
        started_at=T0,
        offers=[
            Offer(version=1, party=Party.US, round=0, terms=terms, at=T0),
            Offer(version=2, party=Party.THEM, round=1, terms=terms, at=T0 + timedelta(hours=1)),
            Offer(version=3, party=Party.US, round=1, terms=terms, at=T0 + timedelta(hours=3)),
        ],
        decisions=[
            DecisionRecord(
                request_id="dev-1",
                kind=DecisionKind.COUNTEROFFER,
                role=Role.DEAL_OWNER,
                approver="ana",
                verdict=Verdict.REVISE,
                terms_version=2,
                at=T0 + timedelta(hours=2),
            )
        ],
    )


def _pending(kind: DecisionKind, role: Role, authority: str = "0") -> PendingDecision:
    return PendingDecision(
        request_id="r",
        kind=kind,
        role=role,
        required_authority=Decimal(authority),
        reason="why",
        terms_version=3,
    )


def test_nobody_approves_terms_they_wrote_but_may_sign_them():
    request, status = _request(), _status_after_ana_revised()
    ana = _approver("ana", Role.DEAL_OWNER, "100000")
    escalation = _pending(DecisionKind.ESCALATION, Role.DEAL_OWNER)
    mine = entitlement(ana, escalation, request, status, T0)
    assert not mine.allowed and mine.own_terms and "you wrote terms version 3" in mine.reason
    assert entitlement(ana, escalation, request, status, T0, Verdict.REJECT).allowed
    assert entitlement(
        ana, _pending(DecisionKind.SIGNATURE, Role.DEAL_OWNER), request, status, T0
    ).allowed
    eve = _approver("eve", Role.EXECUTIVE, "5000000")
    assert entitlement(
        eve, _pending(DecisionKind.ESCALATION, Role.EXECUTIVE), request, status, T0
    ).allowed


def test_role_authority_and_participation_are_checked_at_the_edge():
    request, status = _request(), _status_after_ana_revised()
    signoff = _pending(DecisionKind.FINANCE_SIGNOFF, Role.FINANCE, "2000000")
    fay = _approver("fay", Role.FINANCE, "1000000")
    lee = _approver("lee", Role.LEGAL, "0")
    zed = _approver("zed", Role.FINANCE, "9000000")
    assert "more authority" in entitlement(fay, signoff, request, status, T0).reason
    assert (
        "needs the role finance; you hold legal"
        in entitlement(lee, signoff, request, status, T0).reason
    )
    assert "not a participant" in entitlement(zed, signoff, request, status, T0).reason


def test_fitnest_ui_refuses_to_start_without_a_directory(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITNEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "starters.cli", "ui"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "FITNEST_UI_DIRECTORY" in done.stderr


def test_fitnest_ui_hash_secret_prints_a_hash_that_verifies(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "starters.cli", "ui", "hash-secret"],
        input="s3cret\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("$argon2id$")
    assert verify_secret("s3cret", done.stdout.strip())
    assert "s3cret" not in done.stdout


def test_charts_are_inline_svg_with_every_value_written_and_labels_escaped():
    chart = str(bar_chart("Cycle <days>", [Bar("a<b", 2.0, "2.0 d"), Bar("none", None, "-")]))
    assert chart.startswith("<svg") and 'aria-label="Cycle &lt;days&gt;"' in chart
    assert "a&lt;b" in chart and "2.0 d" in chart and ">-<" in chart
    assert "nothing to show yet" in str(bar_chart("Empty", []))


def test_cycle_time_chart_picks_a_unit_its_longest_bar_fills():
    report = aggregate([])
    assert "(min)" in kpi_charts(report)["cycle"]
    assert _cycle_unit([3.0]) == ("d", 1.0) and _cycle_unit([0.5])[0] == "h"


def test_inbox_looks_at_the_roles_of_the_people_one_stands_in_for():
    fay = _approver("fay", Role.FINANCE, "1000000")
    lee = _approver("lee", Role.LEGAL, "0").model_copy(update={"stands_in_for": ("fay", "gone")})
    directory = Directory(approvers=(fay, lee))
    assert directory.inbox_roles(lee) == ["finance", "legal"]
    assert directory.inbox_roles(fay) == ["finance"]


def test_a_delegate_may_decide_while_the_delegation_is_in_force():
    data = json.loads((ROOT / "ui" / "demo" / "renewal_for_approval.json").read_text())
    ana = next(p for p in data["participants"] if p["name"] == "ana")
    ana["delegation"] = {
        "delegate": "lee",
        "starts": (T0 - timedelta(days=1)).isoformat(),
        "ends": (T0 + timedelta(days=1)).isoformat(),
    }
    request = NegotiationRequest.model_validate(data)
    counter = _pending(DecisionKind.COUNTEROFFER, Role.DEAL_OWNER)
    lee = _approver("lee", Role.LEGAL, "0")
    status = _status_after_ana_revised()
    during = entitlement(lee, counter, request, status, T0)
    assert during.allowed and during.acting_for is not None and during.acting_for.name == "ana"
    assert not entitlement(lee, counter, request, status, T0 + timedelta(days=2)).allowed


def test_a_decision_past_its_due_time_is_overdue():
    late = _pending(DecisionKind.COUNTEROFFER, Role.DEAL_OWNER).model_copy(
        update={"due_at": datetime.now(UTC) - timedelta(minutes=1)}
    )
    assert InboxItem(pending=late).overdue
    soon = late.model_copy(update={"due_at": datetime.now(UTC) + timedelta(hours=1)})
    assert not InboxItem(pending=soon).overdue


def test_inbox_filters_refuse_control_characters_before_any_query():
    for value in ("North\x00wind", "North\nwind", "North\x85wind", "North\u2028wind", "a\x7fb"):
        with pytest.raises(InboxFilterError, match="control characters"):
            InboxFilters(counterparty=value).query()
    assert "'Northwind Traders'" in InboxFilters(counterparty="Northwind Traders").query()


def test_a_page_token_opens_only_for_the_query_it_was_sealed_for():
    tokens = PageTokens("secret")
    sealed = tokens.seal("q1", b"temporal-token")
    assert sealed is not None and tokens.open("q1", sealed) == b"temporal-token"
    for query, text in (
        ("q2", sealed),  # another filter
        ("q1", sealed[:-4] + "AAAA"),  # altered
        ("q1", "bWFkZS11cA=="),  # made up
        ("q1", "not base64 at all!"),
        ("q1", "é"),
        ("q1", "A" * 5000),
    ):
        with pytest.raises(InboxFilterError, match="page token is not valid"):
            tokens.open(query, text)
    with pytest.raises(InboxFilterError):
        PageTokens("other secret").open("q1", sealed)
    assert tokens.open("q1", None) is None and tokens.seal("q1", None) is None


def test_a_session_ends_when_its_lifetime_is_over_or_it_is_ended(tmp_path: Path):
    now = [1000.0]
    store = SessionStore(tmp_path / "sessions.sqlite", lifetime=60, clock=lambda: now[0])
    ana, lee = store.start("ana"), store.start("lee")
    assert store.user_of(ana) == "ana" and store.user_of("made-up") is None
    store.end(lee)
    assert store.user_of(lee) is None
    now[0] += 59
    assert store.user_of(ana) == "ana"
    now[0] += 1
    assert store.user_of(ana) is None  # eight hours in the UI; a minute here
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert ana.encode() not in stored  # only digests: the file opens no session


def test_a_session_ends_when_it_sits_idle_and_lives_on_while_used(tmp_path: Path):
    now = [1000.0]
    store = SessionStore(
        tmp_path / "sessions.sqlite", lifetime=3600, idle=100, clock=lambda: now[0]
    )
    ana, lee = store.start("ana"), store.start("lee")
    for _ in range(5):  # used every 60 s: 300 s in all, three idle timeouts
        now[0] += 60
        assert store.user_of(ana) == "ana"
    assert store.user_of(lee) is None  # untouched for 300 s
    now[0] += 101
    assert store.user_of(ana) is None
    store.close()


def test_sessions_from_before_the_idle_timeout_are_kept_as_used_now(tmp_path: Path):
    import sqlite3

    path = tmp_path / "sessions.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE sessions (digest TEXT PRIMARY KEY, user TEXT NOT NULL, expires REAL NOT NULL)"
        )
        old.execute("INSERT INTO sessions VALUES (?, 'ana', 5000.0)", (_session_digest("old-id"),))
    store = SessionStore(path, lifetime=3600, idle=100, clock=lambda: 1000.0)
    found = store.session("old-id")
    assert found is not None and found.user == "ana" and found.identity.method == "local"
    store.close()


@pytest.mark.parametrize(
    ("issuer", "client", "refused"),
    [
        ("https://idp.example", "fitnest", None),
        ("http://127.0.0.1:9400", "fitnest", None),
        ("http://idp.example", "fitnest", "must be https"),
        ("https://idp.example", "", "set FITNEST_OIDC_CLIENT_ID"),
    ],
)
def test_the_provider_settings_are_checked_and_the_redirect_comes_from_the_public_url(
    issuer: str, client: str, refused: str | None
):
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        oidc_issuer=issuer,
        oidc_client_id=client or None,
        oidc_client_secret="s3cret",
        ui_public_url="https://fitnest.example.com/",
    )
    if refused:
        with pytest.raises(ValueError, match=refused):
            OidcConfig.from_settings(settings)
        return
    config = OidcConfig.from_settings(settings)
    assert config is not None
    assert config.redirect_uri == "https://fitnest.example.com/login/oidc/callback"


def test_without_an_issuer_there_is_no_provider_sign_in():
    assert OidcConfig.from_settings(Settings(_env_file=None)) is None  # type: ignore[call-arg]
