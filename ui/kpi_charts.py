"""The KPI page's charts, from the report every other KPI view uses (``negotiation.report``)."""

from __future__ import annotations

from markupsafe import Markup

from negotiation.report import KpiReport
from ui.charts import Bar, bar_chart

#: (unit, days per unit): the cycle-time chart uses the largest unit its longest bar fills.
_UNITS = (("d", 1.0), ("h", 1 / 24), ("min", 1 / 1440))


def _fmt(value: float | None, suffix: str, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.1f}{suffix}"


def _cycle_unit(days: list[float]) -> tuple[str, float]:
    longest = max(days, default=0.0)
    return next(((u, size) for u, size in _UNITS if longest >= size), _UNITS[-1])


def kpi_charts(report: KpiReport) -> dict[str, Markup]:
    """Cycle time by playbook, outcomes, and compliance rate by playbook."""
    playbooks = report.by_playbook.items()
    unit, size = _cycle_unit([s.median_cycle_days or 0.0 for _, s in playbooks])
    return {
        "cycle": bar_chart(
            f"Median cycle time by playbook ({unit})",
            [
                Bar(
                    name,
                    None if s.median_cycle_days is None else s.median_cycle_days / size,
                    _fmt(s.median_cycle_days, f" {unit}", 1 / size),
                )
                for name, s in playbooks
            ],
        ),
        "outcomes": bar_chart(
            "Outcomes of closed negotiations",
            [Bar(o.value, float(n), str(n)) for o, n in report.overall.outcomes.items()],
        ),
        "compliance": bar_chart(
            "Compliance rate of agreed deals by playbook (%)",
            [
                Bar(
                    name,
                    None if s.compliance_rate is None else s.compliance_rate * 100,
                    _fmt(s.compliance_rate, " %", 100),
                )
                for name, s in playbooks
            ],
            scale_max=100.0,
        ),
    }
