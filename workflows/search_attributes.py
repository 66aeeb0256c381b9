"""Search attributes operators filter on in the Temporal Web UI.

None of them holds a deal term in clear text: DealValue is the lower bound of the deal's
approval tier (its value band), not the contract value.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

MOVEMENT = SearchAttributeKey.for_keyword("NegotiationMovement")
PLAYBOOK = SearchAttributeKey.for_keyword("NegotiationPlaybook")
OUTCOME = SearchAttributeKey.for_keyword("NegotiationOutcome")
COUNTERPARTY = SearchAttributeKey.for_keyword("Counterparty")
DEAL_TYPE = SearchAttributeKey.for_keyword("NegotiationDealType")
DEAL_VALUE = SearchAttributeKey.for_float("DealValue")
AWAITING_DECISION = SearchAttributeKey.for_keyword_list("AwaitingDecision")

ALL: tuple[SearchAttributeKey, ...] = (
    MOVEMENT,
    PLAYBOOK,
    OUTCOME,
    COUNTERPARTY,
    DEAL_TYPE,
    DEAL_VALUE,
    AWAITING_DECISION,
)

#: The CLI spelling of each type, for ``temporal server start-dev --search-attribute Name=Type``.
CLI_TYPES = {
    "KEYWORD": "Keyword",
    "DOUBLE": "Double",
    "KEYWORD_LIST": "KeywordList",
}
