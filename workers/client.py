"""The Temporal client every Fitnest process uses: one place for address and data converter."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from temporalio.client import (
    CancelWorkflowInput,
    Client,
    CountWorkflowsInput,
    DescribeWorkflowInput,
    FetchWorkflowHistoryEventsInput,
    Interceptor,
    ListWorkflowsInput,
    OutboundInterceptor,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    TerminateWorkflowInput,
    WorkflowExecutionAsyncIterator,
    WorkflowExecutionCount,
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowHistoryEventAsyncIterator,
    WorkflowUpdateHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import RetryConfig

from workers.codec import EncryptionCodec, ensure_keyring, load_keyring
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


def data_converter_for(key_file: Path) -> DataConverter:
    """The production converter for the keyring at ``key_file``, made with a fresh key when
    missing: for tests, the bench and local tools, never for a deployment (whose keyring is
    made once by ``fitnest keys init``)."""
    ensure_keyring(key_file)
    return data_converter(Settings(_env_file=None, key_file=key_file))  # type: ignore[call-arg]


class _Timed(Protocol):
    rpc_timeout: timedelta | None


_Call = TypeVar("_Call", bound=_Timed)


class _DeadlineOutbound(OutboundInterceptor):
    """Sets ``rpc_timeout`` on every workflow call that has none of its own."""

    def __init__(self, next: OutboundInterceptor, deadline: timedelta) -> None:
        super().__init__(next)
        self._deadline = deadline

    def _timed(self, call: _Call) -> _Call:
        if call.rpc_timeout is None:
            call.rpc_timeout = self._deadline  # the SDK builds a fresh input for every call
        return call

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        return await self.next.start_workflow(self._timed(input))

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        await self.next.cancel_workflow(self._timed(input))

    async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
        return await self.next.describe_workflow(self._timed(input))

    def fetch_workflow_history_events(
        self, input: FetchWorkflowHistoryEventsInput
    ) -> WorkflowHistoryEventAsyncIterator:
        return self.next.fetch_workflow_history_events(self._timed(input))

    def list_workflows(self, input: ListWorkflowsInput) -> WorkflowExecutionAsyncIterator:
        return self.next.list_workflows(self._timed(input))

    async def count_workflows(self, input: CountWorkflowsInput) -> WorkflowExecutionCount:
        return await self.next.count_workflows(self._timed(input))

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        return await self.next.query_workflow(self._timed(input))

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        await self.next.signal_workflow(self._timed(input))

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        await self.next.terminate_workflow(self._timed(input))

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        return await self.next.start_workflow_update(self._timed(input))


class CallDeadline(Interceptor):
    """Every workflow call of the client gives up after ``deadline`` unless it sets its own.

    Without it the SDK waits without limit: a query to a server that stopped answering (a hung
    process, a dropped network) never returns. Updates wait for their result in polls of this
    length each. Retries of an unreachable server are bounded by the connection's RetryConfig.
    """

    def __init__(self, deadline: timedelta) -> None:
        self.deadline = deadline

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        """Wrap the client's calls."""
        return _DeadlineOutbound(next, self.deadline)


def with_deadline(client: Client, deadline: timedelta) -> Client:
    """``client`` (same connection) with :class:`CallDeadline` on its calls."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], CallDeadline(deadline)]
    return Client(**config)


def _retries_within(deadline: timedelta) -> RetryConfig:
    # The SDK retries an unreachable server for 10 s by default; stop after the deadline instead.
    millis = max(1, int(deadline.total_seconds() * 1000))
    return RetryConfig(max_elapsed_time_millis=millis, max_interval_millis=min(1000, millis))


async def connect(settings: Settings | None = None, *, deadline: timedelta | None = None) -> Client:
    """Connect to the cluster named by ``settings`` (or the environment), payloads encrypted.

    With ``deadline``, connecting, every call and the retries of an unreachable server each give
    up after about that long (for a person waiting on a page); without it, the SDK's defaults.
    """
    settings = settings or Settings()
    converter = data_converter(settings)
    bounded: dict[str, Any] = {}
    if deadline is not None:
        bounded = {
            "retry_config": _retries_within(deadline),
            "interceptors": [CallDeadline(deadline)],
        }
    try:
        async with asyncio.timeout(deadline.total_seconds() if deadline else None):
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.namespace,
                data_converter=converter,
                **bounded,
            )
    # The SDK reports a failed connect as a RuntimeError; a silent network, only by the deadline.
    except (RuntimeError, TimeoutError) as err:
        raise ClusterUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.namespace}): is it running? set FITNEST_TEMPORAL_ADDRESS"
        ) from err
