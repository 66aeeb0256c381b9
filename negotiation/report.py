"""KPIs across closed negotiations: one summary for all, and one per playbook and per deal type.

Pure: it reads :class:`NegotiationResult` objects someone else fetched and returns numbers and
text. Every mean ignores the negotiations a measure does not apply to (deal quality and
compliance count agreed deals only; satisfaction and value-adding share skip ``None``), and a
measure nothing applies to is ``None`` rather than a misleading zero.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel, Field

from negotiation.models import DealType, NegotiationResult, Outcome, PlaybookName

#: The ``by_playbook`` key of negotiations that ended before a playbook was chosen.
NO_PLAYBOOK = "none"
#: The label of the row that sums up every negotiation.
ALL = "all"

_DAY = 86_400.0
_HOUR = 3_600.0


class KpiSummary(BaseModel):
    """The KPIs of a group of closed negotiations."""

    count: int = Field(description="Negotiations in the group.")
    outcomes: dict[Outcome, int] = Field(
        description="How many ended with each outcome (every outcome listed, zeros included)."
    )
    agreed_rate: float | None = Field(description="Share that agreed (0-1); None when empty.")
    median_cycle_days: float | None = Field(description="Median start-to-close time in days.")
    mean_cycle_days: float | None = Field(description="Mean start-to-close time in days.")
    mean_rounds: float | None = Field(description="Mean counteroffer rounds.")
    mean_deal_quality: float | None = Field(
        description="Mean deal quality (0-100) of agreed deals; None when none agreed."
    )
    mean_internal_efficiency: float | None = Field(
        description="Mean share of offers answered without a person (0-1)."
    )
    compliance_rate: float | None = Field(
        description="Share of agreed deals with every approval in order; None when none agreed."
    )
    mean_internal_wait_hours: float | None = Field(
        description="Mean time people owed an answer, in hours."
    )
    mean_counterparty_wait_hours: float | None = Field(
        description="Mean time the counterparty held the ball, in hours."
    )
    mean_value_adding_share: float | None = Field(
        description="Mean share of the cycle spent waiting on nobody; negotiations without one skipped."
    )
    mean_stakeholder_satisfaction: float | None = Field(
        description="Mean retrospective score (1-5) of negotiations that have one."
    )
    reminders: int = Field(description="Reminders sent, in total.")
    escalations: int = Field(description="Decision requests escalated, in total.")
    retrospective_answers: int = Field(description="Retrospective answers given, in total.")
    retrospective_missing: int = Field(description="Retrospective answers missing, in total.")


class LeftOut(BaseModel):
    """A negotiation a report or a page had to leave out: it could not be read."""

    negotiation_id: str
    reason: str = Field(description="Why, in a line (no payload, no deal terms).")


class KpiReport(BaseModel):
    """KPIs of a set of closed negotiations: overall, by playbook and by deal type."""

    overall: KpiSummary = Field(description="Every negotiation in the set.")
    by_playbook: dict[str, KpiSummary] = Field(
        description=f"Per playbook (in playbook order; '{NO_PLAYBOOK}' when none was chosen)."
    )
    by_deal_type: dict[str, KpiSummary] = Field(description="Per deal type.")
    in_retrospective: int = Field(
        default=0,
        description="How many of them are still in their retrospective window (satisfaction provisional).",
    )
    left_out: list[LeftOut] = Field(
        default_factory=list,
        description="Negotiations that could not be read, with why; no number counts them.",
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def summarize(results: Sequence[NegotiationResult]) -> KpiSummary:
    """The KPIs of one group of negotiations."""
    kpis = [r.kpis for r in results]
    agreed = [r.kpis for r in results if r.outcome == Outcome.AGREED]
    cycle_days = [k.cycle_time_seconds / _DAY for k in kpis]
    count = len(results)
    return KpiSummary(
        count=count,
        outcomes={o: sum(1 for r in results if r.outcome == o) for o in Outcome},
        agreed_rate=len(agreed) / count if count else None,
        median_cycle_days=statistics.median(cycle_days) if cycle_days else None,
        mean_cycle_days=_mean(cycle_days),
        mean_rounds=_mean(k.rounds for k in kpis),
        mean_deal_quality=_mean(k.deal_quality for k in agreed),
        mean_internal_efficiency=_mean(k.internal_efficiency for k in kpis),
        compliance_rate=(
            sum(1 for k in agreed if k.compliance.compliant) / len(agreed) if agreed else None
        ),
        mean_internal_wait_hours=_mean(k.internal_wait_seconds / _HOUR for k in kpis),
        mean_counterparty_wait_hours=_mean(k.counterparty_wait_seconds / _HOUR for k in kpis),
        mean_value_adding_share=_mean(k.value_adding_share for k in kpis),
        mean_stakeholder_satisfaction=_mean(k.stakeholder_satisfaction for k in kpis),
        reminders=sum(k.reminders for k in kpis),
        escalations=sum(k.escalations for k in kpis),
        retrospective_answers=sum(k.retrospective_answers for k in kpis),
        retrospective_missing=sum(k.retrospective_missing for k in kpis),
    )


def _grouped(
    results: Sequence[NegotiationResult], key: Callable[[NegotiationResult], str], order: list[str]
) -> dict[str, KpiSummary]:
    """One summary per key present, in ``order`` (keys not in it last, alphabetically)."""
    groups: dict[str, list[NegotiationResult]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    rank = {name: i for i, name in enumerate(order)}
    names = sorted(groups, key=lambda n: (rank.get(n, len(rank)), n))
    return {name: summarize(groups[name]) for name in names}


def aggregate(results: Sequence[NegotiationResult], left_out: Sequence[LeftOut] = ()) -> KpiReport:
    """The KPI report of ``results``: overall, by playbook and by deal type; ``left_out`` names
    the negotiations that could not be read."""
    return KpiReport(
        overall=summarize(results),
        by_playbook=_grouped(
            results,
            lambda r: r.playbook.value if r.playbook else NO_PLAYBOOK,
            [p.value for p in PlaybookName] + [NO_PLAYBOOK],
        ),
        by_deal_type=_grouped(results, lambda r: r.deal_type.value, [d.value for d in DealType]),
        in_retrospective=sum(1 for r in results if r.provisional),
        left_out=list(left_out),
    )


# --- the table ---------------------------------------------------------------------------------


def _num(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


#: (heading, width, cell) of each column after the playbook name.
_COLUMNS: tuple[tuple[str, int, Callable[[KpiSummary], str]], ...] = (
    ("n", 5, lambda s: str(s.count)),
    ("agreed %", 9, lambda s: _num(s.agreed_rate, 100)),
    ("median cycle d", 15, lambda s: _num(s.median_cycle_days)),
    ("rounds", 7, lambda s: _num(s.mean_rounds)),
    ("quality", 8, lambda s: _num(s.mean_deal_quality)),
    ("efficiency", 11, lambda s: _num(s.mean_internal_efficiency, digits=2)),
    ("compliance %", 13, lambda s: _num(s.compliance_rate, 100)),
    ("internal wait h", 16, lambda s: _num(s.mean_internal_wait_hours)),
    ("cp wait h", 10, lambda s: _num(s.mean_counterparty_wait_hours)),
    ("satisfaction", 13, lambda s: _num(s.mean_stakeholder_satisfaction, digits=2)),
)


def _rows(report: KpiReport) -> list[tuple[str, KpiSummary]]:
    return [*report.by_playbook.items(), (ALL, report.overall)]


def _name_width(report: KpiReport) -> int:
    return max(len("playbook"), *(len(name) for name, _ in _rows(report)))


def _kpi_table(report: KpiReport) -> list[str]:
    width = _name_width(report)
    lines = [
        f"{'playbook':<{width}}" + "".join(f"{h:>{w}}" for h, w, _ in _COLUMNS),
    ]
    for name, summary in _rows(report):
        lines.append(
            f"{name:<{width}}" + "".join(f"{cell(summary):>{w}}" for _, w, cell in _COLUMNS)
        )
    return lines


def _outcome_table(report: KpiReport) -> list[str]:
    width = _name_width(report)
    widths = [max(len(o.value), 3) + 2 for o in Outcome]
    lines = [
        f"{'playbook':<{width}}"
        + "".join(f"{o.value:>{w}}" for o, w in zip(Outcome, widths, strict=True))
    ]
    for name, summary in _rows(report):
        counts = (summary.outcomes.get(o, 0) for o in Outcome)
        lines.append(
            f"{name:<{width}}" + "".join(f"{c:>{w}}" for c, w in zip(counts, widths, strict=True))
        )
    return lines


def render_table(report: KpiReport) -> str:
    """The report as fixed-width text: KPIs per playbook and overall, then the outcomes."""
    o = report.overall
    totals = (
        f"value-adding share {_num(o.mean_value_adding_share, 100)}"
        f"{'' if o.mean_value_adding_share is None else ' %'}, "
        f"{o.reminders} reminders, {o.escalations} escalations, retrospectives "
        f"{o.retrospective_answers} answered / {o.retrospective_missing} missing"
    )
    return "\n".join(
        [
            f"KPIs of {o.count} closed negotiation{'' if o.count == 1 else 's'}"
            + (
                f" ({report.in_retrospective} in the retrospective window: satisfaction provisional)"
                if report.in_retrospective
                else ""
            ),
            *_kpi_table(report),
            "",
            "Outcomes",
            *_outcome_table(report),
            "",
            totals,
            *_left_out_lines(report),
        ]
    )


def _left_out_lines(report: KpiReport) -> list[str]:
    if not report.left_out:
        return []
    n = len(report.left_out)
    some = (
        "1 negotiation could not be read and is"
        if n == 1
        else f"{n} negotiations could not be read and are"
    )
    return [
        "",
        f"{some} left out:",
        *(f"  {o.negotiation_id}: {o.reason}" for o in report.left_out),
    ]
