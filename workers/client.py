"""The Temporal client every Fitnest process uses: one place for address and data converter."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from workers.codec import EncryptionCodec, load_keyring
from workers.settings import Settings


class ClusterUnreachable(Exception):
    """The Temporal frontend did not answer."""


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic models as JSON, every payload sealed with the keyring of ``settings``.

    Clients, workers and the replayer must all use it: a payload sealed by one is opened by the
    others. Failure messages and stack traces are moved into an encoded payload too, so that
    an error quoting deal terms is not stored in plain text. Raises
    :class:`workers.codec.KeyringError` when the keyring cannot be read.
    """
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(load_keyring(settings.key_file)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings | None = None) -> Client:
    """Connect to the cluster named by ``settings`` (or the environment), payloads encrypted."""
    settings = settings or Settings()
    converter = data_converter(settings)
    try:
        return await Client.connect(
            settings.temporal_address, namespace=settings.namespace, data_converter=converter
        )
    except RuntimeError as err:  # the SDK reports a failed connect as a RuntimeError
        raise ClusterUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.namespace}): is it running? set FITNEST_TEMPORAL_ADDRESS"
        ) from err
