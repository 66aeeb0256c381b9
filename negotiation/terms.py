"""Deal terms and the mandate that bounds them.

Pure value objects: no Temporal, no I/O, no clock. Money, percentages and multiples are
``Decimal`` so that a concession never drifts by a floating-point cent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

#: The numeric terms every offer carries, in the order they are shown to people.
NUMERIC_TERMS: tuple[str, ...] = (
    "total_contract_value",
    "discount_pct",
    "payment_days",
    "term_months",
    "liability_cap_multiple",
)

#: Terms stored as whole numbers (days, months).
INTEGER_TERMS: frozenset[str] = frozenset({"payment_days", "term_months"})


def _clause_id(value: str) -> str:
    value = value.strip().lower()
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
        raise ValueError("a clause id is 1-64 letters, digits, '-' or '_' (e.g. 'mfn', 'escrow')")
    return value


ClauseId = Annotated[str, AfterValidator(_clause_id)]


class Terms(BaseModel):
    """One complete set of commercial terms, as offered by either side."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_contract_value: Decimal = Field(
        ge=0,
        le=Decimal("1e12"),
        decimal_places=2,
        description="Total contract value, in the deal currency.",
    )
    discount_pct: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        decimal_places=2,
        description="Discount off list price, in percent.",
    )
    payment_days: int = Field(
        default=30, ge=0, le=365, description="Payment due this many days after invoice."
    )
    term_months: int = Field(default=12, ge=1, le=120, description="Contract duration in months.")
    liability_cap_multiple: Decimal = Field(
        default=Decimal(1),
        ge=0,
        le=100,
        decimal_places=2,
        description="Liability cap as a multiple of annual fees.",
    )
    non_standard_clauses: tuple[ClauseId, ...] = Field(
        default=(),
        description="Ids of clauses outside our standard contract (e.g. 'mfn', 'source_escrow').",
    )

    def value_of(self, term: str) -> Decimal:
        """The numeric value of one of :data:`NUMERIC_TERMS` as a Decimal."""
        return Decimal(getattr(self, term))

    def replace(self, **changes: object) -> Terms:
        """A copy with some terms changed, validated again."""
        return Terms.model_validate({**self.model_dump(), **changes})


class TermBound(BaseModel):
    """Target and walk-away for one numeric term.

    Which way is better follows from the two numbers: when the target is above the walk-away,
    more is better for us (a seller's price); when below, less is better (a buyer's price).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: Decimal = Field(description="The value we aim for.")
    walk_away: Decimal = Field(description="The worst value we may accept without escalation.")

    @property
    def higher_is_better(self) -> bool:
        """True when a larger value is better for us."""
        return self.target >= self.walk_away

    def better(self, a: Decimal, b: Decimal) -> bool:
        """True when ``a`` is strictly better for us than ``b``."""
        return a > b if self.higher_is_better else a < b


class Mandate(BaseModel):
    """What the team may agree to without asking anyone: per-term bounds, rounds and deadline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_contract_value: TermBound = Field(description="Bounds on the total contract value.")
    discount_pct: TermBound | None = Field(
        default=None, description="Bounds on the discount, if negotiated."
    )
    payment_days: TermBound | None = Field(
        default=None, description="Bounds on payment days, if negotiated."
    )
    term_months: TermBound | None = Field(
        default=None, description="Bounds on the duration, if negotiated."
    )
    liability_cap_multiple: TermBound | None = Field(
        default=None, description="Bounds on the liability cap, if negotiated."
    )
    acceptable_clauses: tuple[ClauseId, ...] = Field(
        default=(), description="Non-standard clauses the team may accept within the mandate."
    )
    max_rounds: int = Field(
        default=10, ge=1, le=1000, description="Counteroffer rounds before we walk away."
    )
    deadline: datetime = Field(
        description="When the negotiation expires if not agreed (timezone-aware)."
    )

    @model_validator(mode="after")
    def _deadline_is_aware(self) -> Mandate:
        if self.deadline.tzinfo is None:
            raise ValueError("deadline must carry a timezone, e.g. 2027-03-01T17:00:00Z")
        return self

    def bounds(self) -> dict[str, TermBound]:
        """The bounded numeric terms, by name, in :data:`NUMERIC_TERMS` order."""
        found = {name: getattr(self, name) for name in NUMERIC_TERMS}
        return {name: bound for name, bound in found.items() if bound is not None}


class Position(StrEnum):
    """Where a value sits against the mandate."""

    MEETS_TARGET = "meets_target"
    WITHIN_WALK_AWAY = "within_walk_away"
    BEYOND_WALK_AWAY = "beyond_walk_away"


class Party(StrEnum):
    """Who made an offer."""

    US = "us"
    THEM = "them"


class Offer(BaseModel):
    """A numbered version of the terms: every offer and counteroffer is a new version."""

    model_config = ConfigDict(frozen=True)

    version: int = Field(ge=1, description="Terms version, counted across both sides from 1.")
    party: Party = Field(description="Who made this offer.")
    round: int = Field(ge=0, description="Counteroffer round in which it was made (0 = opening).")
    terms: Terms = Field(description="The terms offered.")
    at: datetime = Field(description="When it was made or received (workflow time).")
    note: str = Field(default="", max_length=2000, description="Free text that came with it.")
