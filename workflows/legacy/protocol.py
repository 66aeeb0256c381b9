"""[Legacy path, release 4: marked for removal with workflows/legacy/] What the negotiation workflow and its movements hand each other.

The negotiation (parent) is the only address clients know. It forwards messages to the movement
that is playing as :class:`Envelope` signals, and each movement reports what it did back as a
:class:`MovementReport` signal, so the parent's ``status`` is always whole. A movement takes the
:class:`ScoreState` of the negotiation and returns it advanced.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from negotiation.models import (
    CounterpartyResponse,
    DecisionRecord,
    DecisionRequest,
    Escalation,
    HumanDecision,
    Movement,
    NegotiationRequest,
    Outcome,
    PlaybookName,
    RejectedMessage,
    Reminder,
    Review,
    Role,
    TimelineEvent,
    Touchpoint,
)
from negotiation.policy import Policy, Requirement
from negotiation.strategy import StrategyState
from negotiation.terms import Offer, Terms
from workflows.seal import SEALED_DELIVER, SEALED_REPORTS, SealContext

#: Signal a movement received forwarded messages on, unsealed (negotiations started before
#: the sealed channel; refused from anyone in those started since).
DELIVER_SIGNAL = "deliver"
#: Signal the negotiation received movement reports on, one at a time (movements of release 1).
REPORT_SIGNAL = "movement_report"
#: Signal the negotiation received batches of movement reports on, unsealed (release 2).
REPORTS_SIGNAL = "movement_reports"
#: Every internal signal name: from a client, each is recorded as rejected.
INTERNAL_SIGNALS = frozenset(
    {DELIVER_SIGNAL, REPORT_SIGNAL, REPORTS_SIGNAL, SEALED_DELIVER, SEALED_REPORTS}
)
#: Patch: the negotiation and its movements seal their internal messages (release 4).
SEALED_CHANNEL = "sealed-internal-messages"
#: Signals clients send the negotiation.
COUNTERPARTY_SIGNAL = "counterparty_response"
DECISION_SIGNAL = "human_decision"


class Envelope(BaseModel):
    """A validated message forwarded from the negotiation to the movement playing."""

    counterparty: CounterpartyResponse | None = None
    decision: HumanDecision | None = None
    received_at: datetime = Field(description="When the negotiation received it.")
    acting_for: str | None = Field(default=None, description="Delegator, when a delegate decided.")
    approver_authority: Decimal | None = Field(
        default=None, description="Authority the decision was taken with (the delegator's, if any)."
    )
    role: Role | None = Field(
        default=None, description="The role the request had when the decision was accepted."
    )

    @property
    def message_id(self) -> str:
        """The id of the message inside."""
        msg = self.counterparty or self.decision
        assert msg is not None
        return msg.message_id


class MovementReport(BaseModel):
    """What a movement did since its last report; the parent folds it into the status."""

    movement: Movement
    playbook: PlaybookName | None = None
    round: int | None = None
    offers: list[Offer] = Field(default_factory=list)
    requested: list[DecisionRequest] = Field(default_factory=list)
    withdrawn: list[str] = Field(default_factory=list, description="Request ids no longer needed.")
    decided: list[DecisionRecord] = Field(default_factory=list)
    reviews: list[Review] = Field(default_factory=list)
    rejected: list[RejectedMessage] = Field(default_factory=list)
    timeline: list[str] = Field(default_factory=list, description="Plain sentences, no deal terms.")
    reminders: list[Reminder] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    touchpoints: list[Touchpoint] = Field(default_factory=list)
    awaiting_counterparty: bool = Field(
        default=False, description="We just handed the ball to the counterparty."
    )
    at: datetime | None = Field(
        default=None,
        description="When the movement made the report (batched reports arrive later).",
    )
    taken: list[str] = Field(
        default_factory=list, description="Ids of forwarded messages the movement has acted on."
    )
    last_sequence: int | None = Field(
        default=None, description="The counterparty's last sequence the movement took."
    )


class MovementReports(BaseModel):
    """Reports a movement gathered since it last waited, sent in one signal, oldest first.

    One signal per wait instead of one per step: each signal costs both workflows a task.
    """

    reports: list[MovementReport] = Field(default_factory=list)


class Approval(BaseModel):
    """An approval and the terms it was given on, so a later version can tell if it still stands."""

    record: DecisionRecord
    terms: Terms


class ScoreState(BaseModel):
    """The negotiation's state as it passes from movement to movement (and across continue-as-new)."""

    request: NegotiationRequest
    policy: Policy | None = None
    playbook: PlaybookName | None = None
    round: int = 0
    next_version: int = 1
    our_offer: Offer | None = None
    their_offer: Offer | None = None
    last_sequence: int = 0
    processed_ids: list[str] = Field(
        default_factory=list, description="Message ids already acted on."
    )
    first_response: CounterpartyResponse | None = Field(
        default=None, description="The opening's counteroffer, for development to answer."
    )
    strategy: StrategyState = Field(default_factory=StrategyState)
    automated_responses: int = 0
    asked: int = Field(default=0, description="Decision requests made so far (for unique ids).")
    agreed: Offer | None = None
    committed_at: datetime | None = Field(
        default=None, description="When we committed to the agreed terms."
    )
    signed_at: datetime | None = None
    closure_requirements: list[Requirement] = Field(default_factory=list)
    outcome: Outcome | None = None
    outcome_reason: str = ""
    inbox: list[Envelope] = Field(
        default_factory=list, description="Messages received, not yet acted on."
    )
    continued: int = Field(
        default=0, description="Times the development movement continued-as-new."
    )
    approvals: list[Approval] = Field(default_factory=list)
    stalled_rounds: int = Field(
        default=0, description="Their rounds in a row without a concession."
    )
    counterparty_since: datetime | None = Field(
        default=None, description="When we last handed the ball to the counterparty."
    )
    counterparty_reminded: datetime | None = Field(
        default=None, description="The hand-over the counterparty was last reminded about."
    )
    history_budget: int = Field(
        default=2_000, description="Events after which development continues-as-new with its state."
    )
    reports: list[MovementReport] = Field(
        default_factory=list,
        description="Reports not yet sent when the movement ended or continued-as-new.",
    )
    seal: SealContext | None = Field(
        default=None,
        description="How this negotiation's internal messages are sealed; None in negotiations "
        "started before the sealed channel (their movements take unsealed messages).",
    )

    def close(self, outcome: Outcome, reason: str) -> None:
        """End the negotiation with ``outcome``."""
        self.outcome = outcome
        self.outcome_reason = reason


# Re-exported so movement modules import their vocabulary from one place.
__all__ = [
    "DELIVER_SIGNAL",
    "REPORTS_SIGNAL",
    "REPORT_SIGNAL",
    "Envelope",
    "MovementReport",
    "MovementReports",
    "ScoreState",
    "TimelineEvent",
]
