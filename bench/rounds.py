"""What a development round costs in history events, by event type.

A round's events are the development movement's (every run) plus the parent's while development
played (the reports it folds in, the messages it forwards), divided by the rounds played.
"""

from __future__ import annotations

import statistics
from collections import Counter

from pydantic import BaseModel, Field
from temporalio.api.history.v1 import HistoryEvent

from bench.histories import Tally, development_window
from bench.report import table


class EventsPerRound(BaseModel):
    """History events of the development rounds, per round, by event type."""

    development: float = Field(description="The development movement's events (all runs).")
    parent: float = Field(description="The parent's events while development played.")
    total: float
    development_by_type: dict[str, float]
    parent_by_type: dict[str, float]

    @classmethod
    def of(
        cls,
        negotiations: list[tuple[str, list[list[HistoryEvent]], list[list[HistoryEvent]]]],
        rounds: int,
    ) -> EventsPerRound:
        """Per round, averaged over ``negotiations``: (id, the parent's runs, development runs)."""
        development: list[Counter[str]] = []
        parent: list[Counter[str]] = []
        for negotiation_id, parent_runs, development_runs in negotiations:
            child, window = Tally(), Tally()
            for run in development_runs:
                child.add(run)
            window.add(development_window(parent_runs, negotiation_id))
            development.append(child.by_type)
            parent.append(window.by_type)
        dev, par = _mean(development, rounds), _mean(parent, rounds)
        return cls(
            development=round(sum(dev.values()), 2),
            parent=round(sum(par.values()), 2),
            total=round(sum(dev.values()) + sum(par.values()), 2),
            development_by_type=dev,
            parent_by_type=par,
        )

    def render(self) -> list[str]:
        """A table of event types, most frequent first."""
        types = list(dict.fromkeys([*self.development_by_type, *self.parent_by_type]))
        rows = [("event type per round", "development", "parent")]
        rows += [
            (t, f"{self.development_by_type.get(t, 0):g}", f"{self.parent_by_type.get(t, 0):g}")
            for t in types
        ]
        return table(rows)


def _mean(counters: list[Counter[str]], rounds: int) -> dict[str, float]:
    names = sorted(
        {name for c in counters for name in c}, key=lambda n: -sum(c[n] for c in counters)
    )
    return {n: round(statistics.fmean(c[n] for c in counters) / rounds, 2) for n in names}
