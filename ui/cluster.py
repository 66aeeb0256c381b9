"""The UI's way to Temporal: connected at startup when Temporal answers, else at the first request
that needs it, and never waited on for longer than ``FITNEST_UI_TEMPORAL_TIMEOUT``.

A page or API call that cannot reach Temporal answers 503 (``ui.app``) and the next one tries
again, so the UI process stays up (``/healthz``, sign-in) while Temporal is down or restarting.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import Depends, Request
from temporalio.client import Client

from ui.negotiations import RequestCache
from workers.client import ClusterUnreachable, connect, with_deadline
from workers.settings import Settings

log = structlog.get_logger("fitnest.ui")


@dataclass(frozen=True)
class Temporal:
    """What a request needs to read and change negotiations."""

    client: Client
    requests: RequestCache


class Cluster:
    """The one connection of the UI: given (tests, the bench), or made from the settings."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.deadline = timedelta(seconds=settings.ui_temporal_timeout)
        self._temporal = None if client is None else _linked(with_deadline(client, self.deadline))
        self._connecting = asyncio.Lock()

    async def temporal(self) -> Temporal:
        """The connection; :class:`ClusterUnreachable` (503) while Temporal does not answer."""
        if self._temporal is None:
            async with self._connecting:  # one attempt at a time, not one per waiting request
                if self._temporal is None:
                    client = await connect(self.settings, deadline=self.deadline)
                    self._temporal = _linked(client)
        return self._temporal

    async def try_at_start(self) -> None:
        """Connect now if Temporal answers; otherwise say so and serve anyway."""
        try:
            await self.temporal()
        except ClusterUnreachable as err:
            log.warning("temporal_unreachable", detail=str(err), pages="503 until it answers")


def _linked(client: Client) -> Temporal:
    return Temporal(client=client, requests=RequestCache(client))


async def temporal(request: Request) -> Temporal:
    """Dependency of the pages and API operations that talk to negotiations."""
    cluster: Cluster = request.app.state.cluster
    return await cluster.temporal()


Connected = Annotated[Temporal, Depends(temporal)]
