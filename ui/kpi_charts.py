"""The KPI page's charts, from the report every other KPI view uses (``negotiation.report``)."""

from __future__ import annotations

from markupsafe import Markup

from negotiation.report import KpiReport
from ui.charts import Bar, bar_chart


def _fmt(value: float | None, suffix: str, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.1f}{suffix}"


def kpi_charts(report: KpiReport) -> dict[str, Markup]:
    """Cycle time by playbook, outcomes, and compliance rate by playbook."""
    playbooks = report.by_playbook.items()
    return {
        "cycle": bar_chart(
            "Median cycle time by playbook (days)",
            [
                Bar(name, s.median_cycle_days, _fmt(s.median_cycle_days, " d"))
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
