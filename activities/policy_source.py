"""Where the negotiation policy comes from: a YAML or JSON file, or the built-in defaults.

The file is read on every call rather than cached: an operator can change the policy without
restarting workers, and each negotiation records the policy it loaded (the activity result is in
its history), so replay never depends on the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from temporalio import activity

from activities.errors import InvalidPolicy, activity_edge, describe
from activities.log import logger
from negotiation.policy import Policy


class PolicySource:
    """Loads the policy from the configured file (``FITNEST_POLICY_FILE``), or the defaults."""

    def __init__(self, path: Path | None) -> None:
        """Remember ``path``; nothing is read until :meth:`load_policy` runs."""
        self.path = Path(path) if path is not None else None

    @activity.defn(name="load_policy")
    async def load_policy(self) -> Policy:
        """The policy: the file's fields over the defaults, or the defaults when no file is set.

        Raises a non-retryable ``ApplicationError`` of type ``InvalidPolicy`` naming the file and
        the offending field when the file is missing, unparseable or invalid.
        """
        log = logger(__name__)
        if self.path is None:
            policy = Policy()
            log.info("policy.loaded", source="defaults", version=policy.version)
            return policy
        with activity_edge():
            try:
                raw = await asyncio.to_thread(self.path.read_bytes)
            except OSError as err:
                log.warning("policy.invalid", path=str(self.path), problem=type(err).__name__)
                raise InvalidPolicy(
                    f"policy file {self.path} cannot be read: {err.strerror}"
                ) from None
            policy = self._parse(raw)
        log.info(
            "policy.loaded",
            path=str(self.path),
            version=policy.version,
            sha256=hashlib.sha256(raw).hexdigest()[:16],
        )
        return policy

    def _parse(self, raw: bytes) -> Policy:
        """The policy in ``raw``, or :class:`InvalidPolicy` saying what is wrong and where."""
        try:
            data = self._decode(raw)
        except (ValueError, yaml.YAMLError) as err:
            # YAML's message names line and column; json's too. Neither quotes much content.
            raise InvalidPolicy(
                f"policy file {self.path} is not valid YAML or JSON: {err}"
            ) from None
        if data is not None and not isinstance(data, dict):
            raise InvalidPolicy(
                f"policy file {self.path} must hold a mapping of policy fields, "
                f"not {type(data).__name__}"
            )
        try:
            return Policy.from_mapping(data)
        except ValidationError as err:
            raise InvalidPolicy(f"policy file {self.path} is invalid: {describe(err)}") from None

    def _decode(self, raw: bytes) -> Any:
        """Parsed file content: JSON for ``.json`` (numbers as Decimal), YAML otherwise."""
        assert self.path is not None
        if self.path.suffix.lower() == ".json":
            return json.loads(raw, parse_float=Decimal)
        return yaml.safe_load(raw)
