"""The sample deal: one renewal request that the tests, the bench and demos build on.

A 60k EUR renewal we sell to Northwind Traders, with a 48k walk-away and a full team (a deal
owner, legal, finance, an executive and implementation). One builder, so that every test and
every benchmark negotiates the same deal unless it says what it changes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from negotiation.models import NegotiationRequest

#: The team of the sample deal: name, role, authority limit (EUR).
TEAM: tuple[tuple[str, str, str], ...] = (
    ("ana", "deal_owner", "100000"),
    ("lee", "legal", "0"),
    ("fay", "finance", "1000000"),
    ("eve", "executive", "10000000"),
    ("ivo", "implementation", "0"),
)


def renewal_request(
    playbook: str | None = "automated",
    *,
    negotiation_id: str | None = None,
    now: datetime | None = None,
    **overrides: Any,
) -> NegotiationRequest:
    """The sample renewal, due 90 days after ``now``, on ``playbook`` (None: the policy chooses).

    ``overrides`` replace fields by path, ``__`` between the parts:
    ``renewal_request(mandate__max_rounds=500)``.
    """
    now = now or datetime.now(UTC)
    data: dict[str, Any] = {
        "negotiation_id": negotiation_id or f"t-{uuid.uuid4().hex[:12]}",
        "deal_type": "renewal",
        "counterparty": {"name": "Northwind Traders", "email": "buyer@northwind.example"},
        "currency": "EUR",
        "opening_terms": {
            "total_contract_value": "60000",
            "discount_pct": "0",
            "payment_days": 30,
            "term_months": 24,
            "liability_cap_multiple": "1",
        },
        "mandate": {
            "total_contract_value": {"target": "60000", "walk_away": "48000"},
            "discount_pct": {"target": "0", "walk_away": "12"},
            "payment_days": {"target": "30", "walk_away": "60"},
            "max_rounds": 6,
            "deadline": (now + timedelta(days=90)).isoformat(),
        },
        "participants": [
            {
                "name": name,
                "role": role,
                "authority_limit": limit,
                "email": f"{name}@fitnest.example",
            }
            for name, role, limit in TEAM
        ],
        "playbook": playbook,
    }
    for key, value in overrides.items():
        target = data
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return NegotiationRequest.model_validate(data)
