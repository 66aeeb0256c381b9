"""The negotiation's messages and records: one pydantic model per message, every field documented.

Models evolve by adding fields with defaults, so that histories written by older code still load.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from negotiation.mandate import evaluate
from negotiation.terms import Mandate, Offer, Terms

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IDENT = re.compile(r"^[a-z0-9][a-z0-9._-]{1,127}$")


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value) or any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


def _identifier(value: str) -> str:
    if not _IDENT.fullmatch(value):  # match() would let a trailing newline through
        raise ValueError(
            "must be 2-128 characters of lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _one_line(value: str) -> str:
    # Names end up in e-mail headers: CR/LF would inject headers; VT, NEL, U+2028 and the other
    # control and separator characters are refused by the e-mail library after the fact.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("must be one line of printable text (no control or line-break characters)")
    return value


#: Bounds of what a workflow records from a client: a rejected message's id, the signal or update
#: it came as, and the reason (cut and marked, never refused, see :func:`cut`).
MAX_MESSAGE_ID = 128
MAX_KIND = 64
MAX_REASON = 500


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters and marked as cut, when longer."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}...(+{len(text) - limit + 20} chars)"[:limit]


def cut(limit: int) -> BeforeValidator:
    """A bound for client text a workflow *records* (a rejected message's id, a signal's name):
    cut and marked, never refused, since refusing would lose the record."""
    return BeforeValidator(lambda v: shorten(v, limit) if isinstance(v, str) else v)


Email = Annotated[str, AfterValidator(_email)]
OneLine = Annotated[str, AfterValidator(_one_line)]
Identifier = Annotated[
    str,
    AfterValidator(_identifier),
    # What the validator checks, stated in the JSON schema (the API's OpenAPI document).
    WithJsonSchema({"type": "string", "pattern": _IDENT.pattern, "minLength": 2, "maxLength": 128}),
]


class DealType(StrEnum):
    """The kind of deal being negotiated."""

    SUPPLIER = "supplier"
    ENTERPRISE_SALE = "enterprise_sale"
    PARTNERSHIP = "partnership"
    RENEWAL = "renewal"


class PlaybookName(StrEnum):
    """How the ensemble plays: who decides, and in which order reviews run."""

    CONDUCTOR_LED = "conductor_led"
    COLLABORATIVE_ENSEMBLE = "collaborative_ensemble"
    AUTOMATED = "automated"


class Role(StrEnum):
    """A participant's part in the negotiation."""

    DEAL_OWNER = "deal_owner"
    LEGAL = "legal"
    FINANCE = "finance"
    EXECUTIVE = "executive"
    IMPLEMENTATION = "implementation"


class Movement(StrEnum):
    """The four movements of a negotiation."""

    PREPARATION = "preparation"
    OPENING = "opening"
    DEVELOPMENT = "development"
    CLOSURE = "closure"


class Outcome(StrEnum):
    """How a negotiation ended."""

    AGREED = "agreed"
    WALKED_AWAY = "walked_away"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Delegation(BaseModel):
    """Out of office: another participant decides in this one's place between two dates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delegate: Identifier = Field(description="Participant name of the stand-in.")
    starts: datetime = Field(description="From when the delegate may decide (timezone-aware).")
    ends: datetime = Field(description="Until when (exclusive).")

    @model_validator(mode="after")
    def _dates(self) -> Delegation:
        if self.starts.tzinfo is None or self.ends.tzinfo is None:
            raise ValueError("delegation dates must carry a timezone")
        if self.ends <= self.starts:
            raise ValueError("a delegation must end after it starts")
        return self

    def covers(self, moment: datetime) -> bool:
        """True while the delegation is in force."""
        return self.starts <= moment < self.ends


class RoleCard(BaseModel):
    """A participant: who they are, what they contribute, what they may decide, how to reach them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Identifier = Field(description="Unique participant id; approvers decide under this name.")
    role: Role = Field(description="The participant's part in the negotiation.")
    authority_limit: Decimal = Field(
        default=Decimal(0),
        ge=0,
        description="Largest total contract value this person may approve.",
    )
    email: Email = Field(description="Where notifications and decision requests go.")
    contribution: str = Field(default="", max_length=500, description="What this person brings.")
    duties: tuple[str, ...] = Field(
        default=(), description="Communication duties, e.g. 'weekly update'."
    )
    delegation: Delegation | None = Field(
        default=None, description="Who decides for this participant while out of office."
    )


class Counterparty(BaseModel):
    """The other side of the table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: OneLine = Field(
        min_length=1, max_length=120, description="Organisation name (shown to operators)."
    )
    email: Email = Field(description="Contact address for offers.")


class NegotiationRequest(BaseModel):
    """Everything a backend system sends to start a negotiation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    negotiation_id: Identifier = Field(
        description="Workflow id of the negotiation. Must not contain deal terms: it is visible to operators."
    )
    deal_type: DealType = Field(description="Kind of deal.")
    counterparty: Counterparty = Field(description="The other party.")
    currency: str = Field(
        pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code of all amounts."
    )
    opening_terms: Terms = Field(description="Our opening offer; must lie within the mandate.")
    mandate: Mandate = Field(description="Target and walk-away terms, maximum rounds and deadline.")
    participants: tuple[RoleCard, ...] = Field(
        # A notification goes to at most 100 addresses: a larger team could not be told.
        min_length=1,
        max_length=100,
        description="Role cards of our team.",
    )
    playbook: PlaybookName | None = Field(
        default=None, description="Orchestration playbook; chosen by policy when absent."
    )
    time_sensitive: bool = Field(
        default=False, description="Checkpoints every working day rather than every week."
    )
    checkpoint_days: int | None = Field(
        default=None,
        ge=1,
        le=90,
        description="Checkpoint cadence in days; the policy's when absent.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> NegotiationRequest:
        names = [p.name for p in self.participants]
        if len(names) != len(set(names)):
            raise ValueError("participant names must be unique")
        if not any(p.role == Role.DEAL_OWNER for p in self.participants):
            raise ValueError("participants must include a deal_owner")
        # ``beyond`` also names 'non_standard_clauses' when a clause lies outside the mandate:
        # the opening offer goes out without approval, so it must lie wholly within the mandate.
        beyond = evaluate(self.opening_terms, self.mandate).beyond
        if beyond:
            raise ValueError(f"opening terms lie beyond the walk-away on: {', '.join(beyond)}")
        self._check_delegations(set(names))
        return self

    def _check_delegations(self, names: set[str]) -> None:
        """Delegates are participants, never oneself, and delegations never form a cycle."""
        to = {p.name: p.delegation.delegate for p in self.participants if p.delegation}
        for who, delegate in to.items():
            if delegate == who:
                raise ValueError(f"{who} cannot delegate to themselves")
            if delegate not in names:
                raise ValueError(f"{who} delegates to {delegate}, who is not a participant")
            seen, step = {who}, delegate
            while step in to:
                if to[step] in seen | {step}:
                    raise ValueError(f"delegations form a cycle through {who} and {step}")
                seen.add(step)
                step = to[step]

    def participant(self, name: str) -> RoleCard | None:
        """The role card of participant ``name``, if any."""
        return next((p for p in self.participants if p.name == name), None)

    def holders(self, role: Role) -> list[RoleCard]:
        """Participants holding ``role``, highest authority first."""
        found = [p for p in self.participants if p.role == role]
        return sorted(found, key=lambda p: p.authority_limit, reverse=True)


class CounterpartyAction(StrEnum):
    """What the counterparty did."""

    ACCEPT = "accept"
    COUNTER = "counter"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    SIGN = "sign"


class CounterpartyResponse(BaseModel):
    """A message from the counterparty, fed in by a backend system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = Field(
        min_length=1, max_length=128, description="Unique id; a repeat changes nothing."
    )
    sequence: int = Field(
        ge=1, description="The counterparty's message number; older than the last is stale."
    )
    action: CounterpartyAction = Field(
        description="accept, counter, reject, withdraw, or sign (in closure)."
    )
    terms: Terms | None = Field(default=None, description="Their terms; required with 'counter'.")
    note: str = Field(default="", max_length=2000, description="Free text from the counterparty.")

    @model_validator(mode="after")
    def _terms_with_counter(self) -> CounterpartyResponse:
        if self.action == CounterpartyAction.COUNTER and self.terms is None:
            raise ValueError("a 'counter' response must carry terms")
        return self


class Verdict(StrEnum):
    """A person's answer to a decision request."""

    APPROVE = "approve"
    REJECT = "reject"
    REVISE = "revise"


class HumanDecision(BaseModel):
    """A person's answer to one decision request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = Field(
        min_length=1, max_length=128, description="Unique id; a repeat changes nothing."
    )
    request_id: str = Field(
        min_length=1, max_length=128, description="The decision request answered."
    )
    approver: str = Field(
        min_length=1, max_length=128, description="Participant name of the decider."
    )
    verdict: Verdict = Field(description="approve, reject, or revise (with revised terms).")
    terms_version: int | None = Field(
        default=None,
        ge=1,
        description="Terms version decided on; defaults to the request's version.",
    )
    comment: str = Field(default="", max_length=2000, description="Why.")
    revised_terms: Terms | None = Field(
        default=None, description="Our counter; required with 'revise'."
    )

    @model_validator(mode="after")
    def _terms_with_revise(self) -> HumanDecision:
        if self.verdict == Verdict.REVISE and self.revised_terms is None:
            raise ValueError("a 'revise' verdict must carry revised_terms")
        if self.verdict != Verdict.REVISE and self.revised_terms is not None:
            raise ValueError("revised_terms go only with a 'revise' verdict")
        return self


class DecisionKind(StrEnum):
    """What a person is asked to decide."""

    COUNTEROFFER = "counteroffer"
    ESCALATION = "escalation"
    LEGAL_SIGNOFF = "legal_signoff"
    FINANCE_SIGNOFF = "finance_signoff"
    SIGNATURE = "signature"


class DecisionRequest(BaseModel):
    """A question put to a person holding a role and enough authority."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(
        description="Unique within the negotiation; derived from movement and round."
    )
    kind: DecisionKind = Field(description="What is to be decided.")
    role: Role = Field(description="Role that must decide.")
    required_authority: Decimal = Field(
        default=Decimal(0), description="Minimum authority limit of the decider."
    )
    reason: str = Field(description="Why this decision is needed (no deal terms).")
    terms_version: int = Field(ge=1, description="The terms version the decision is about.")
    movement: Movement = Field(description="Movement that asked.")
    created_at: datetime = Field(description="When it was asked.")
    due_at: datetime | None = Field(default=None, description="When an answer is due.")
    suggestion: Terms | None = Field(
        default=None, description="The strategy's suggested counter, if any."
    )
    verdicts: tuple[Verdict, ...] = Field(
        default=(Verdict.APPROVE, Verdict.REJECT, Verdict.REVISE),
        description="Answers this request takes.",
    )


class DecisionRecord(BaseModel):
    """A decision that was taken, by whom and on which terms version."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(description="The request decided.")
    kind: DecisionKind = Field(description="What was decided.")
    role: Role = Field(description="Role the request required.")
    approver: str = Field(description="Who decided (participant name, or 'policy' when automatic).")
    approver_authority: Decimal = Field(
        default=Decimal(0), description="Their authority limit at the time."
    )
    verdict: Verdict = Field(description="The answer.")
    terms_version: int = Field(description="Terms version decided on.")
    comment: str = Field(default="", description="Why.")
    at: datetime = Field(description="When it was recorded.")
    message_id: str | None = Field(default=None, description="Id of the message that carried it.")
    acting_for: str | None = Field(
        default=None, description="The participant a delegate decided for, when a delegate decided."
    )
    carried_from: int | None = Field(
        default=None, description="Terms version whose approval still stands for this one."
    )


class RejectedMessage(BaseModel):
    """A message that could not be used, and why: nothing is silently dropped."""

    model_config = ConfigDict(frozen=True)

    message_id: Annotated[str | None, cut(MAX_MESSAGE_ID)] = Field(
        description="Its id, when it had a readable one (cut at 128 characters)."
    )
    kind: Annotated[str, cut(MAX_KIND)] = Field(description="The signal or update it came as.")
    reason: Annotated[str, cut(MAX_REASON)] = Field(description="Why it was rejected.")
    at: datetime = Field(description="When.")


class Review(BaseModel):
    """Outcome of a legal review or finance approval activity, as recorded in the history."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="'legal' or 'finance'.")
    terms_version: int = Field(description="Terms version reviewed.")
    passed: bool = Field(description="No human sign-off needed.")
    required_role: Role | None = Field(
        default=None, description="Who must sign off when not passed."
    )
    required_authority: Decimal = Field(
        default=Decimal(0), description="Authority that must sign off."
    )
    risk_score: int = Field(default=0, ge=0, le=100, description="0 (none) to 100 (severe).")
    findings: tuple[str, ...] = Field(default=(), description="Short findings, no amounts.")
    at: datetime = Field(description="When it completed.")


class TimelineEvent(BaseModel):
    """A notable step, for the story an operator reads."""

    model_config = ConfigDict(frozen=True)

    at: datetime = Field(description="When.")
    movement: Movement = Field(description="Movement in which it happened.")
    text: str = Field(description="What happened (no deal terms).")


class Reminder(BaseModel):
    """A reminder that went out: to an approver about a decision, or to a silent counterparty."""

    at: datetime = Field(description="When it was sent.")
    to: str = Field(description="The role reminded, or 'counterparty'.")
    request_id: str | None = Field(default=None, description="The decision request, if any.")


class Escalation(BaseModel):
    """A decision request handed to the next authority after twice its due time without an answer."""

    at: datetime = Field(description="When it escalated.")
    request_id: str = Field(description="The request.")
    from_role: Role = Field(description="Who had it.")
    to_role: Role = Field(description="Who has it now.")


class Touchpoint(BaseModel):
    """A relationship check-in proposed to the counterparty."""

    at: datetime = Field(description="When it was proposed.")
    round: int = Field(description="Round it followed.")
    reason: str = Field(description="Why (no deal terms).")


class RetrospectiveAnswer(BaseModel):
    """A participant's retrospective on a closed negotiation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str = Field(
        min_length=1, max_length=128, description="Unique id; a repeat changes nothing."
    )
    participant: str = Field(min_length=1, max_length=128, description="Participant name.")
    satisfaction: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent).")
    note: str = Field(default="", max_length=2000, description="What went well or badly.")


class RetrospectiveEntry(BaseModel):
    """One participant's retrospective, or its absence."""

    participant: str
    satisfaction: int | None = None
    note: str = ""
    missing: bool = Field(default=False, description="No answer before the window closed.")
    at: datetime | None = None


class PendingDecision(BaseModel):
    """A decision request still waiting, as shown in the status."""

    request_id: str
    kind: DecisionKind
    role: Role
    required_authority: Decimal
    reason: str
    terms_version: int
    due_at: datetime | None = None
    #: When it was asked and by which movement; None in statuses from before they were carried.
    created_at: datetime | None = None
    movement: Movement | None = None


class MovementSpan(BaseModel):
    """When a movement started and ended."""

    movement: Movement
    started_at: datetime
    ended_at: datetime | None = None


class Compliance(BaseModel):
    """Whether every required approval was obtained from the right authority before it mattered."""

    compliant: bool = Field(description="True when there are no violations.")
    violations: tuple[str, ...] = Field(default=(), description="What was missing or wrong.")


class Kpis(BaseModel):
    """The measures every negotiation yields."""

    cycle_time_seconds: float = Field(description="From start to close.")
    movement_seconds: dict[str, float] = Field(
        default_factory=dict, description="Duration of each movement."
    )
    rounds: int = Field(description="Counteroffer rounds played.")
    deal_quality: int | None = Field(description="0-100 for an agreed deal; None otherwise.")
    human_decisions: int = Field(description="Decisions taken by people.")
    automated_responses: int = Field(description="Counteroffers answered by the strategy.")
    internal_efficiency: float = Field(
        description="Share of offers answered without a person (0-1)."
    )
    compliance: Compliance = Field(description="Policy compliance of the decisions taken.")
    stakeholder_satisfaction: float | None = Field(
        default=None, description="Mean retrospective score 1-5, None until answered."
    )
    internal_wait_seconds: float = Field(
        default=0.0, description="Time people owed an answer (a decision request was open)."
    )
    counterparty_wait_seconds: float = Field(
        default=0.0, description="Time the counterparty held the ball (our offer unanswered)."
    )
    value_adding_share: float | None = Field(
        default=None,
        description="Share of the cycle time spent neither waiting on people nor on them.",
    )
    reminders: int = Field(default=0, description="Reminders sent (approvers and counterparty).")
    escalations: int = Field(
        default=0, description="Decision requests escalated for lack of an answer."
    )
    retrospective_answers: int = Field(default=0, description="Participants who answered.")
    retrospective_missing: int = Field(
        default=0, description="Participants who did not answer in time."
    )


class ReceivedMessage(BaseModel):
    """A message the negotiation took in (never its content): the sender's receipt in the status."""

    message_id: str
    kind: Literal["counterparty_response", "human_decision"]
    at: datetime


class NegotiationStatus(BaseModel):
    """What the ``status`` query returns: the negotiation as it stands."""

    negotiation_id: str
    deal_type: DealType
    counterparty: str
    currency: str
    playbook: PlaybookName | None = None
    movement: Movement
    round: int = 0
    our_terms: Offer | None = None
    their_terms: Offer | None = None
    pending_decisions: list[PendingDecision] = Field(default_factory=list)
    outcome: Outcome | None = None
    outcome_reason: str = ""
    agreed_terms: Offer | None = None
    offers: list[Offer] = Field(default_factory=list)
    decisions: list[DecisionRecord] = Field(default_factory=list)
    reviews: list[Review] = Field(default_factory=list)
    rejected_messages: list[RejectedMessage] = Field(default_factory=list)
    rejected_not_listed: int = Field(
        default=0, description="Rejections past the listed bound (the oldest), counted only."
    )
    queued_messages: int = 0
    playing: str | None = Field(
        default=None,
        description="Workflow id of the movement playing, which holds the live status; None when "
        "the negotiation itself holds it.",
    )
    last_sequence: int = Field(
        default=0,
        description="The highest counterparty sequence taken in; the next response needs a higher one.",
    )
    last_received: ReceivedMessage | None = Field(
        default=None,
        description="The last message taken in, shown as soon as it arrives (its effect follows).",
    )
    timeline: list[TimelineEvent] = Field(default_factory=list)
    movements: list[MovementSpan] = Field(default_factory=list)
    checkpoints: list[datetime] = Field(default_factory=list, description="When digests went out.")
    reminders: list[Reminder] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    touchpoints: list[Touchpoint] = Field(default_factory=list)
    retrospective: list[RetrospectiveEntry] = Field(default_factory=list)
    retrospective_until: datetime | None = Field(
        default=None, description="While set and in the future, retrospective answers are taken."
    )
    internal_wait_seconds: float = 0.0
    counterparty_wait_seconds: float = 0.0
    started_at: datetime
    closed_at: datetime | None = None


class NegotiationResult(BaseModel):
    """What a finished negotiation returns."""

    negotiation_id: str
    outcome: Outcome
    outcome_reason: str
    playbook: PlaybookName | None
    deal_type: DealType
    agreed_terms: Offer | None
    kpis: Kpis
    status: NegotiationStatus
    provisional: bool = Field(
        default=False,
        description="Read during the retrospective window: satisfaction may still change.",
    )


class DecisionReceipt(BaseModel):
    """What the ``decide`` update answers once a decision is accepted."""

    request_id: str
    approver: str
    verdict: Verdict
    terms_version: int
    recorded_at: datetime
