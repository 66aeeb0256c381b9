"""What the negotiation workflow and its movements hand each other (the one-hop path).

Clients address the movement that plays, by its derived id ``<negotiation id>/<movement>``
(:func:`movement_id`). The negotiation starts each movement with the :class:`ScoreState`, whose
:class:`~negotiation.aggregate.Negotiation` the movement then owns, and takes it back, advanced,
when the movement returns. Two internal messages remain, both sealed (``workflows.seal``):

- :class:`Forwarded`, down: a message that reached the negotiation itself while a movement played
  (a caller that found no movement playing, and one started meanwhile);
- :class:`MovementNews`, up: what operators see on the negotiation itself (its search attributes
  and details) changed while a movement played: the pending decisions.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from negotiation.aggregate import Closing, Negotiation, counterparty_actions
from negotiation.models import (
    CounterpartyAction,
    CounterpartyResponse,
    HumanDecision,
    Movement,
    NegotiationRequest,
    Outcome,
    PendingDecision,
    PlaybookName,
    RejectedMessage,
)
from negotiation.policy import Policy, Requirement
from negotiation.strategy import StrategyState
from negotiation.terms import Offer, Terms
from workflows.legacy.protocol import Approval
from workflows.seal import SEALED_DELIVER, SEALED_REPORTS, SealContext

#: Patch: this negotiation takes the one-hop path (release 5). Runs without it are release 4's,
#: played by ``workflows.legacy``.
ONE_HOP = "one-hop-messages"
#: Signals and updates clients send (to the movement playing, or to the negotiation).
COUNTERPARTY_SIGNAL = "counterparty_response"
DECISION_SIGNAL = "human_decision"
RESPOND_UPDATE = "respond"
DECIDE_UPDATE = "decide"
#: Every internal signal name, of either path: from a client, each is recorded as rejected.
INTERNAL_SIGNALS = frozenset(
    {"deliver", "movement_report", "movement_reports", SEALED_DELIVER, SEALED_REPORTS}
)
#: The error type an update on the negotiation answers while a movement plays: ask the movement.
MOVEMENT_PLAYING = "MovementPlaying"
#: The error type of an update the negotiation cannot take on its path (release 4 has no
#: ``respond``): send the signal instead.
NOT_ON_THIS_PATH = "NotOnThisPath"

#: Workflow type names of the movements on this path (release 4's keep theirs: ``legacy``).
MOVEMENT_TYPES = {
    Movement.PREPARATION: "NegotiationPreparation",
    Movement.OPENING: "NegotiationOpening",
    Movement.DEVELOPMENT: "NegotiationDevelopment",
    Movement.CLOSURE: "NegotiationClosure",
}


def movement_id(negotiation_id: str, movement: Movement) -> str:
    """The workflow id of a negotiation's movement, derived: callers need only the negotiation id."""
    return f"{negotiation_id}/{movement.value}"


class Forwarded(BaseModel):
    """A client message the negotiation took while a movement played, passed on to it."""

    counterparty: CounterpartyResponse | None = None
    decision: HumanDecision | None = None
    rejected: RejectedMessage | None = Field(
        default=None, description="A message the negotiation refused: the status records it."
    )
    received_at: datetime = Field(description="When the negotiation received it.")


class ForwardedBatch(BaseModel):
    """Messages forwarded together, in the order they reached the negotiation (one signal for
    many: a flood costs one workflow task per batch, not per message)."""

    messages: list[Forwarded] = Field(default_factory=list)


#: Bounds of one forwarded batch: messages, and their size as JSON (well under Temporal's 2 MB).
MAX_FORWARDED = 100
MAX_FORWARDED_BYTES = 256 * 1024


class MovementNews(BaseModel):
    """What the negotiation shows operators, as the movement playing now has it."""

    movement: Movement
    round: int
    playbook: PlaybookName | None = None
    pending: list[PendingDecision] = Field(default_factory=list)
    details: str = Field(description="The movement's current details (markdown, no deal terms).")


class ScoreState(BaseModel):
    """The negotiation as it passes from movement to movement (and across continue-as-new)."""

    request: NegotiationRequest
    negotiation: Negotiation
    policy: Policy | None = None
    playbook: PlaybookName | None = None
    round: int = 0
    next_version: int = 1
    our_offer: Offer | None = None
    their_offer: Offer | None = None
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
    approvals: list[Approval] = Field(default_factory=list)
    stalled_rounds: int = Field(
        default=0, description="Their rounds in a row without a concession."
    )
    counterparty_reminded: datetime | None = Field(
        default=None, description="The hand-over the counterparty was last reminded about."
    )
    last_checkpoint: datetime | None = Field(
        default=None, description="When the rhythm last sent (or started) its checkpoint."
    )
    to_be_continued: bool = Field(
        default=False, description="Development handed back only to go on in a fresh run."
    )
    seal: SealContext | None = None

    @property
    def history_budget(self) -> int:
        """Events after which a development run hands back, and the negotiation continues-as-new
        (the policy's)."""
        return (self.policy or Policy()).history_budget

    def counterparty_takes(self) -> frozenset[CounterpartyAction]:
        """What the counterparty can usefully send now, in the movement the status names."""
        return counterparty_actions(self.negotiation.status.movement, self.agreed is not None)

    def close(self, outcome: Outcome, reason: str) -> None:
        """End the negotiation with ``outcome``: from now it takes nothing more."""
        self.outcome = outcome
        self.outcome_reason = reason
        self.negotiation.conclude(outcome)

    def closing(self) -> Closing:
        """What the KPIs and compliance need from the play."""
        return Closing(
            policy=self.policy or Policy(),
            rounds=self.round,
            automated_responses=self.automated_responses,
            committed_at=self.committed_at,
            signed_at=self.signed_at,
            closure_requirements=self.closure_requirements,
        )


class Carried(BaseModel):
    """What a negotiation hands its next run when it continues-as-new (between two development
    runs): the whole score, and the search attributes it has set."""

    state: ScoreState
    attributes: dict[str, object] = Field(default_factory=dict)


__all__ = [
    "Approval",
    "Carried",
    "Forwarded",
    "ForwardedBatch",
    "MovementNews",
    "ScoreState",
    "Terms",
]
