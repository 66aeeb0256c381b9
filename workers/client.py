"""The Temporal client every Fitnest process uses: one place for address and data converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from workers.settings import Settings

#: Pydantic models cross every boundary as JSON; one converter for clients, workers and replay.
DATA_CONVERTER = pydantic_data_converter


class ClusterUnreachable(Exception):
    """The Temporal frontend did not answer."""


async def connect(settings: Settings | None = None) -> Client:
    """Connect to the cluster named by ``settings`` (or the environment)."""
    settings = settings or Settings()
    try:
        return await Client.connect(
            settings.temporal_address, namespace=settings.namespace, data_converter=DATA_CONVERTER
        )
    except RuntimeError as err:  # the SDK reports a failed connect as a RuntimeError
        raise ClusterUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.namespace}): is it running? set FITNEST_TEMPORAL_ADDRESS"
        ) from err
