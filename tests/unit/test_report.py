"""aggregate() and render_table() on hand-built results, and the report's visibility query."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from negotiation.models import NegotiationResult, Outcome
from negotiation.report import ALL, NO_PLAYBOOK, KpiReport, LeftOut, aggregate, render_table
from starters.report import ReportFilterError, build_query, collect_results

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
DAY, HOUR = 86_400.0, 3_600.0
_ids = itertools.count(1)


def result(
    outcome: str = "agreed",
    playbook: str | None = "automated",
    deal_type: str = "renewal",
    **kpis: Any,
) -> NegotiationResult:
    """A closed negotiation whose KPIs are the defaults below, overridden by ``kpis``."""
    negotiation_id = f"r-{next(_ids)}"
    data: dict[str, Any] = {
        "cycle_time_seconds": DAY,
        "rounds": 0,
        "deal_quality": 100 if outcome == "agreed" else None,
        "human_decisions": 0,
        "automated_responses": 0,
        "internal_efficiency": 1.0,
        "compliance": {"compliant": True},
    }
    data.update(kpis)
    return NegotiationResult.model_validate(
        {
            "negotiation_id": negotiation_id,
            "outcome": outcome,
            "outcome_reason": "",
            "playbook": playbook,
            "deal_type": deal_type,
            "agreed_terms": None,
            "kpis": data,
            "status": {
                "negotiation_id": negotiation_id,
                "deal_type": deal_type,
                "counterparty": "Northwind Traders",
                "currency": "EUR",
                "movement": "closure",
                "outcome": outcome,
                "started_at": T0.isoformat(),
            },
        }
    )


# --- aggregate ------------------------------------------------------------------------------


def test_outcomes_and_agreed_rate_are_counted_per_playbook_and_overall() -> None:
    report = aggregate(
        [
            result("agreed", "automated"),
            result("agreed", "automated"),
            result("rejected", "automated"),
            result("walked_away", "conductor_led"),
            result("walked_away", "conductor_led"),
        ]
    )
    assert report.overall.count == 5
    assert report.overall.agreed_rate == pytest.approx(0.4)
    assert report.overall.outcomes[Outcome.AGREED] == 2
    assert report.overall.outcomes[Outcome.WALKED_AWAY] == 2
    assert report.overall.outcomes[Outcome.REJECTED] == 1
    assert report.overall.outcomes[Outcome.EXPIRED] == 0  # every outcome is listed
    assert set(report.overall.outcomes) == set(Outcome)
    automated = report.by_playbook["automated"]
    assert automated.count == 3 and automated.agreed_rate == pytest.approx(2 / 3)
    conductor = report.by_playbook["conductor_led"]
    assert conductor.count == 2 and conductor.agreed_rate == 0.0
    assert conductor.outcomes[Outcome.WALKED_AWAY] == 2


def test_cycle_time_median_and_mean_are_in_days() -> None:
    days = [1, 2, 6]
    summary = aggregate([result(cycle_time_seconds=d * DAY) for d in days]).overall
    assert summary.median_cycle_days == pytest.approx(2.0)
    assert summary.mean_cycle_days == pytest.approx(3.0)


def test_median_of_an_even_count_is_the_middle_pair_averaged() -> None:
    summary = aggregate([result(cycle_time_seconds=d * DAY) for d in (1, 2, 4, 10)]).overall
    assert summary.median_cycle_days == pytest.approx(3.0)


def test_rounds_and_internal_efficiency_are_means_over_every_negotiation() -> None:
    summary = aggregate(
        [
            result(rounds=1, internal_efficiency=1.0),
            result("walked_away", rounds=4, internal_efficiency=0.5),
        ]
    ).overall
    assert summary.mean_rounds == pytest.approx(2.5)
    assert summary.mean_internal_efficiency == pytest.approx(0.75)


def test_deal_quality_and_compliance_count_agreed_deals_only() -> None:
    summary = aggregate(
        [
            result("agreed", deal_quality=80, compliance={"compliant": True}),
            result(
                "agreed",
                deal_quality=60,
                compliance={"compliant": False, "violations": ["finance approval missing"]},
            ),
            # A deal that did not agree counts for neither, even with a quality or a violation.
            result("walked_away", deal_quality=10, compliance={"compliant": False}),
        ]
    ).overall
    assert summary.mean_deal_quality == pytest.approx(70.0)
    assert summary.compliance_rate == pytest.approx(0.5)


def test_without_an_agreed_deal_quality_and_compliance_are_none() -> None:
    summary = aggregate([result("walked_away"), result("expired")]).overall
    assert summary.agreed_rate == 0.0
    assert summary.mean_deal_quality is None
    assert summary.compliance_rate is None


def test_waits_are_mean_hours() -> None:
    summary = aggregate(
        [
            result(internal_wait_seconds=2 * HOUR, counterparty_wait_seconds=10 * HOUR),
            result(internal_wait_seconds=4 * HOUR, counterparty_wait_seconds=0),
        ]
    ).overall
    assert summary.mean_internal_wait_hours == pytest.approx(3.0)
    assert summary.mean_counterparty_wait_hours == pytest.approx(5.0)


def test_satisfaction_and_value_adding_share_skip_negotiations_without_one() -> None:
    summary = aggregate(
        [
            result(stakeholder_satisfaction=4.0, value_adding_share=0.2),
            result(stakeholder_satisfaction=None, value_adding_share=None),
            result(stakeholder_satisfaction=3.0, value_adding_share=0.6),
        ]
    ).overall
    assert summary.mean_stakeholder_satisfaction == pytest.approx(3.5)
    assert summary.mean_value_adding_share == pytest.approx(0.4)


def test_satisfaction_and_value_adding_share_are_none_when_nobody_has_one() -> None:
    summary = aggregate([result(), result("rejected")]).overall
    assert summary.mean_stakeholder_satisfaction is None
    assert summary.mean_value_adding_share is None


def test_kpis_written_before_the_newer_fields_use_their_defaults() -> None:
    summary = aggregate([result()]).overall  # no waits, reminders or retrospective given
    assert summary.mean_internal_wait_hours == 0.0
    assert summary.mean_counterparty_wait_hours == 0.0
    assert summary.reminders == summary.escalations == 0
    assert summary.retrospective_answers == summary.retrospective_missing == 0


def test_reminders_escalations_and_retrospectives_are_totals() -> None:
    summary = aggregate(
        [
            result(reminders=2, escalations=1, retrospective_answers=3, retrospective_missing=2),
            result("expired", reminders=5, escalations=2, retrospective_missing=5),
        ]
    ).overall
    assert summary.reminders == 7
    assert summary.escalations == 3
    assert summary.retrospective_answers == 3
    assert summary.retrospective_missing == 7


def test_empty_input_counts_nothing_and_has_no_means() -> None:
    report = aggregate([])
    s = report.overall
    assert s.count == 0 and sum(s.outcomes.values()) == 0
    means = [
        s.agreed_rate,
        s.median_cycle_days,
        s.mean_cycle_days,
        s.mean_rounds,
        s.mean_deal_quality,
        s.mean_internal_efficiency,
        s.compliance_rate,
        s.mean_internal_wait_hours,
        s.mean_counterparty_wait_hours,
        s.mean_value_adding_share,
        s.mean_stakeholder_satisfaction,
    ]
    assert means == [None] * len(means)
    assert report.by_playbook == {} and report.by_deal_type == {}


def test_a_negotiation_without_a_playbook_is_grouped_as_none() -> None:
    report = aggregate([result("cancelled", playbook=None), result()])
    assert list(report.by_playbook) == ["automated", NO_PLAYBOOK]
    assert report.by_playbook[NO_PLAYBOOK].outcomes[Outcome.CANCELLED] == 1


def test_playbooks_and_deal_types_are_listed_in_their_declared_order() -> None:
    report = aggregate(
        [
            result(playbook="automated", deal_type="renewal"),
            result(playbook="collaborative_ensemble", deal_type="partnership"),
            result(playbook="conductor_led", deal_type="supplier"),
        ]
    )
    assert list(report.by_playbook) == ["conductor_led", "collaborative_ensemble", "automated"]
    assert list(report.by_deal_type) == ["supplier", "partnership", "renewal"]


def test_deal_types_are_summarized_apart() -> None:
    report = aggregate(
        [
            result("agreed", deal_type="supplier"),
            result("rejected", deal_type="supplier"),
            result("agreed", deal_type="renewal"),
        ]
    )
    assert report.by_deal_type["supplier"].count == 2
    assert report.by_deal_type["supplier"].agreed_rate == pytest.approx(0.5)
    assert report.by_deal_type["renewal"].agreed_rate == 1.0


def test_the_report_survives_a_trip_through_json() -> None:
    report = aggregate([result(), result("walked_away", "conductor_led", rounds=3)])
    assert KpiReport.model_validate_json(report.model_dump_json()) == report


# --- render_table ---------------------------------------------------------------------------


def _row(table: str, name: str, section: int = 0) -> list[str]:
    """The cells of row ``name`` in the KPI table (section 0) or the outcome table (1)."""
    block = table.split("\n\n")[section]
    line = next(ln for ln in block.splitlines() if ln.split()[0] == name)
    return line.split()


def test_table_has_a_row_per_playbook_and_an_all_row_with_the_numbers() -> None:
    report = aggregate(
        [
            result(
                cycle_time_seconds=2 * DAY,
                deal_quality=90,
                internal_wait_seconds=3 * HOUR,
                counterparty_wait_seconds=6 * HOUR,
                stakeholder_satisfaction=4.5,
            ),
            result(
                "walked_away",
                "conductor_led",
                cycle_time_seconds=4 * DAY,
                rounds=2,
                internal_efficiency=0.5,
                internal_wait_seconds=HOUR,
            ),
        ]
    )
    table = render_table(report)
    header = table.splitlines()[1]
    for heading in ("playbook", "n", "agreed %", "median cycle d", "rounds", "quality"):
        assert heading in header
    for heading in ("efficiency", "compliance %", "internal wait h", "cp wait h", "satisfaction"):
        assert heading in header
    assert _row(table, "automated") == [
        "automated", "1", "100.0", "2.0", "0.0", "90.0", "1.00", "100.0", "3.0", "6.0", "4.50",
    ]  # fmt: skip
    assert _row(table, "conductor_led") == [
        "conductor_led", "1", "0.0", "4.0", "2.0", "-", "0.50", "-", "1.0", "0.0", "-",
    ]  # fmt: skip
    assert _row(table, ALL) == [
        "all", "2", "50.0", "3.0", "1.0", "90.0", "0.75", "100.0", "2.0", "3.0", "4.50",
    ]  # fmt: skip
    kpi_lines = table.split("\n\n")[0].splitlines()[1:]
    assert len({len(line) for line in kpi_lines}) == 1  # fixed width: the columns line up


def test_table_breaks_down_the_outcomes_per_playbook() -> None:
    report = aggregate(
        [result(), result("expired"), result("walked_away", "conductor_led")],
    )
    table = render_table(report)
    outcomes = table.split("\n\n")[1].splitlines()
    assert outcomes[0] == "Outcomes"
    assert outcomes[1].split() == ["playbook", *(o.value for o in Outcome)]
    assert _row(table, "automated", 1) == ["automated", "1", "0", "0", "0", "1", "0"]
    assert _row(table, "conductor_led", 1) == ["conductor_led", "0", "1", "0", "0", "0", "0"]
    assert _row(table, ALL, 1) == ["all", "1", "1", "0", "0", "1", "0"]


def test_table_ends_with_the_totals() -> None:
    table = render_table(
        aggregate(
            [result(reminders=2, escalations=1, retrospective_answers=4, value_adding_share=0.25)]
        )
    )
    assert table.splitlines()[-1] == (
        "value-adding share 25.0 %, 2 reminders, 1 escalations, "
        "retrospectives 4 answered / 0 missing"
    )


def test_table_of_nothing_says_so_with_an_empty_all_row() -> None:
    table = render_table(aggregate([]))
    assert table.startswith("KPIs of 0 closed negotiations")
    assert _row(table, ALL) == ["all", "0", *["-"] * 9]
    assert table.splitlines()[-1].startswith("value-adding share -, 0 reminders")


def test_negotiations_left_out_are_named_after_the_totals_and_counted_nowhere() -> None:
    gone = LeftOut(negotiation_id="n-gone", reason="its query failed (GRPC Message too large)")
    report = aggregate([result()], left_out=[gone])
    assert report.overall.count == 1 and report.left_out == [gone]
    lines = render_table(report).splitlines()
    assert lines[-3:] == [
        "",
        "1 negotiation could not be read and is left out:",
        "  n-gone: its query failed (GRPC Message too large)",
    ]
    assert KpiReport.model_validate_json(report.model_dump_json()) == report
    assert aggregate([result()]).left_out == []  # and the table ends with the totals


# --- the visibility query -------------------------------------------------------------------

BASE = "WorkflowType = 'NegotiationWorkflow' AND ExecutionStatus = 'Completed'"


def test_query_without_filters_asks_for_completed_negotiations() -> None:
    assert build_query() == BASE


def test_query_adds_every_filter_with_dates_in_utc_rfc3339() -> None:
    query = build_query(
        playbook="automated",
        deal_type="renewal",
        since=datetime(2027, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))),
        until=datetime(2027, 2, 1),  # naive: read as UTC
        task_queue="it-1234abcd",
    )
    assert query == (
        f"{BASE} AND NegotiationPlaybook = 'automated' AND NegotiationDealType = 'renewal'"
        " AND CloseTime >= '2027-01-01T00:00:00Z' AND CloseTime < '2027-02-01T00:00:00Z'"
        " AND TaskQueue = 'it-1234abcd'"
    )


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"playbook": "bogus"}, "unknown playbook 'bogus'; choose one of: conductor_led"),
        ({"playbook": "automated' OR 'x'='x"}, "unknown playbook"),
        ({"deal_type": "lease"}, "unknown deal type 'lease'; choose one of: supplier"),
        ({"task_queue": "q' OR TaskQueue != '"}, "is not a plain name"),
        ({"task_queue": ""}, "is not a plain name"),
        ({"task_queue": "queue\n"}, "is not a plain name"),
        (
            {"since": datetime(2027, 2, 1, tzinfo=UTC), "until": datetime(2027, 1, 1, tzinfo=UTC)},
            "must be before until",
        ),
    ],
)
def test_a_filter_that_cannot_be_used_is_refused_with_the_reason(
    filters: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReportFilterError, match=message.replace("(", r"\(")):
        build_query(**filters)


async def test_a_bad_filter_is_refused_before_the_server_is_asked() -> None:
    nobody: Any = object()  # any use of the client would fail with AttributeError
    with pytest.raises(ReportFilterError, match="unknown playbook"):
        await collect_results(nobody, playbook="bogus")
    with pytest.raises(ReportFilterError, match="limit"):
        await collect_results(nobody, limit=0)
