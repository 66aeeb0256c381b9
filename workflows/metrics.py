"""The product's metrics, emitted from workflow code through ``workflow.metric_meter()``.

A metric is not a command: it adds nothing to history, so emitting one never breaks replay, and
the SDK emits nothing while a worker replays history (each event is counted once, live). The
worker's Prometheus endpoint (``workers/telemetry.py``) serves them next to the SDK's metrics,
prefixed ``fitnest_``. Labels are low-cardinality names (outcome, playbook, deal type, role):
never a negotiation id, a counterparty or a deal term.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

STARTED = "fitnest_negotiations_started"
CLOSED = "fitnest_negotiations_closed"
ROUNDS = "fitnest_negotiation_rounds"
DECISION_WAIT = "fitnest_decision_wait"
ESCALATIONS = "fitnest_escalations"

#: Every product metric, for dashboards and the test that scrapes them.
ALL = (STARTED, CLOSED, ROUNDS, DECISION_WAIT, ESCALATIONS)

_HOUR = 3600.0
#: Histogram buckets sized for negotiations (the SDK's defaults stop at seconds): decisions take
#: minutes to days, negotiations a handful of rounds.
BUCKETS: dict[str, tuple[float, ...]] = {
    DECISION_WAIT: (
        60,
        600,
        _HOUR,
        4 * _HOUR,
        8 * _HOUR,
        24 * _HOUR,
        48 * _HOUR,
        96 * _HOUR,
        168 * _HOUR,
    ),
    ROUNDS: (0, 1, 2, 3, 4, 6, 8, 12, 20, 50, 100),
}


def negotiation_started(playbook: str, deal_type: str) -> None:
    """A negotiation chose its playbook and opens."""
    workflow.metric_meter().create_counter(
        STARTED, "Negotiations that finished preparation and opened."
    ).add(1, {"playbook": playbook, "deal_type": deal_type})


def negotiation_closed(outcome: str, playbook: str, deal_type: str, rounds: int) -> None:
    """A negotiation reached its outcome after ``rounds`` counteroffer rounds."""
    meter = workflow.metric_meter()
    labels = {"outcome": outcome, "playbook": playbook, "deal_type": deal_type}
    meter.create_counter(CLOSED, "Negotiations closed, by outcome.").add(1, labels)
    meter.create_histogram(ROUNDS, "Counteroffer rounds of a closed negotiation.").record(
        rounds, labels
    )


def decision_waited(waited: timedelta, role: str, kind: str) -> None:
    """A decision request was answered ``waited`` after it was asked."""
    workflow.metric_meter().create_histogram_timedelta(
        DECISION_WAIT, "Time from a decision request to its answer.", unit="duration"
    ).record(max(waited, timedelta(0)), {"role": role, "kind": kind})


def escalated(from_role: str, to_role: str) -> None:
    """An unanswered decision request moved up to the next authority."""
    workflow.metric_meter().create_counter(
        ESCALATIONS, "Decision requests escalated for want of an answer."
    ).add(1, {"from_role": from_role, "to_role": to_role})
