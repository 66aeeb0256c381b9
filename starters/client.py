"""How backend systems start and talk to negotiations, from Python.

Every function needs only a connected client and the negotiation id. Errors are typed so that a
backend can tell a closed negotiation from an unknown one, and a refused decision from a failure.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    QueryRejectCondition,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, TemporalError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from negotiation.aggregate import ResponseReceipt, fingerprint
from negotiation.models import (
    CounterpartyResponse,
    DecisionReceipt,
    HumanDecision,
    NegotiationRequest,
    NegotiationResult,
    NegotiationStatus,
    RetrospectiveAnswer,
    RetrospectiveEntry,
)
from negotiation.report import LeftOut
from workers.codec import KeyringError
from workers.settings import TASK_QUEUE
from workflows import search_attributes as sa
from workflows.negotiation import NegotiationWorkflow
from workflows.protocol import (
    COUNTERPARTY_SIGNAL,
    DECIDE_UPDATE,
    DECISION_SIGNAL,
    MOVEMENT_PLAYING,
    MOVEMENT_TYPES,
    NOT_ON_THIS_PATH,
    RESPOND_UPDATE,
)

#: The query a movement and the negotiation both answer with the negotiation's status.
STATUS_QUERY = "status"

log = structlog.get_logger(__name__)


class NegotiationError(Exception):
    """Base of the errors a backend can act on."""


class NegotiationNotFound(NegotiationError):
    """No negotiation has this id."""


class NegotiationClosed(NegotiationError):
    """The negotiation has ended; it takes no more messages. ``state`` is its outcome, or how its
    workflow ended when it has none ("terminated", say)."""

    def __init__(self, message: str, state: str = "closed") -> None:
        super().__init__(message)
        self.state = state


class DecisionRejected(NegotiationError):
    """The negotiation refused a decision; the message says why."""


#: What talking to one negotiation can fail with when neither the caller nor Fitnest is at fault:
#: Temporal not answering (or no worker taking a query), a query the workflow failed (a status
#: too large for gRPC, say) or rejected, a payload this keyring cannot open.
READ_FAILURES: tuple[type[Exception], ...] = (TemporalError, KeyringError)

#: The longest reason :func:`unreadable_reason` gives; servers can answer with long messages.
MAX_REASON = 160


def unreadable_reason(err: Exception) -> str:
    """Why one negotiation could not be read, in a line: the kind of failure and Temporal's own
    words, never a payload (a keyring's message names its file, so only its kind is given)."""
    if isinstance(err, RPCError):
        reason = f"Temporal did not answer ({err.message or err.status.name})"
    elif isinstance(err, RPCTimeoutOrCancelledError):
        reason = "Temporal did not answer in time"
    elif isinstance(err, WorkflowQueryFailedError):
        reason = f"its query failed ({err.message})"
    elif isinstance(err, WorkflowQueryRejectedError):
        state = err.status.name.lower() if err.status else "unknown"
        reason = f"its query was rejected (workflow {state})"
    elif isinstance(err, KeyringError):
        reason = f"a payload cannot be decrypted with this keyring ({type(err).__name__})"
    else:
        reason = f"a payload cannot be decoded ({type(err).__name__})"
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def left_out(negotiation_id: str, err: Exception, where: str) -> LeftOut:
    """``negotiation_id`` named with why it could not be read, for a report or a page that goes
    on without it; the whole error goes to the operator's log (event ``<where>.unreadable``)."""
    reason = unreadable_reason(err)
    log.warning(
        f"{where}.unreadable",
        workflow_id=negotiation_id,
        reason=reason,
        error=f"{type(err).__name__}: {err}"[:500],
    )
    return LeftOut(negotiation_id=negotiation_id, reason=reason)


class StartReceipt(BaseModel):
    """What starting a negotiation tells the caller."""

    negotiation_id: str
    started: bool
    run_id: str | None = None


#: The largest request accepted, as JSON. The request travels in the start event, in every
#: movement's input and in each continue-as-new; Temporal refuses payloads over 2 MB and warns
#: from 256 KB, while a real request is a few KB.
MAX_REQUEST_BYTES = 256 * 1024


def check_startable(request: NegotiationRequest, now: datetime | None = None) -> None:
    """Refuse a request whose deadline has already passed (it would expire at once), or that is
    too large to carry through the negotiation's history."""
    size = len(request.model_dump_json())
    if size > MAX_REQUEST_BYTES:
        raise ValueError(
            f"the request is too large: {size} bytes as JSON, at most {MAX_REQUEST_BYTES}"
        )
    now = now or datetime.now(UTC)
    if request.mandate.deadline <= now:
        raise ValueError(f"mandate.deadline {request.mandate.deadline.isoformat()} is already past")


async def start_negotiation(
    client: Client, request: NegotiationRequest, *, task_queue: str = TASK_QUEUE
) -> StartReceipt:
    """Start a negotiation; starting the same id again never starts a second one."""
    check_startable(request)
    try:
        handle = await client.start_workflow(
            NegotiationWorkflow.run,
            request,
            id=request.negotiation_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"Negotiation with {request.counterparty.name} ({request.deal_type.value})",
        )
    except WorkflowAlreadyStartedError:
        return StartReceipt(negotiation_id=request.negotiation_id, started=False)
    return StartReceipt(
        negotiation_id=request.negotiation_id, started=True, run_id=handle.result_run_id
    )


async def _closed_or_missing(
    client: Client, negotiation_id: str, err: RPCError
) -> NegotiationError:
    if err.status != RPCStatusCode.NOT_FOUND:
        raise err
    try:
        desc = await client.get_workflow_handle(negotiation_id).describe()
    except RPCError as missing:
        if missing.status == RPCStatusCode.NOT_FOUND:
            return NegotiationNotFound(f"no negotiation {negotiation_id}")
        raise
    state = desc.status.name.lower() if desc.status else "closed"
    return NegotiationClosed(
        f"negotiation {negotiation_id} is closed ({state}); it takes no more messages", state
    )


async def _refuse_if_ended(
    handle: WorkflowHandle[Any, Any], negotiation_id: str, what: str
) -> WorkflowExecutionDescription:
    """Raise NegotiationClosed when the negotiation has ended: its workflow is closed, or it has
    an outcome and stays open only for the retrospective. Read from the server's own record of
    the execution, so it needs no worker (and a signal sent next is still durable)."""
    desc = await handle.describe()
    outcome = desc.typed_search_attributes.get(sa.OUTCOME)
    if outcome or desc.status != WorkflowExecutionStatus.RUNNING:
        state = outcome or (desc.status.name.lower() if desc.status else "closed")
        raise NegotiationClosed(f"negotiation {negotiation_id} is closed ({state}); {what}", state)
    return desc


#: How often a message follows the negotiation to the movement playing before it is left with
#: the negotiation itself (which keeps or forwards it): movements end and start meanwhile.
_ATTEMPTS = 7
#: The first wait (seconds, doubling) for the next movement to start when none plays.
_BETWEEN = 0.02


def playing_movement(desc: WorkflowExecutionDescription) -> str | None:
    """The workflow id of the movement the negotiation plays now (one-hop path), from the
    server's record of the negotiation (strongly consistent, no worker needed); None between
    movements and for negotiations of release 4, which take every message themselves."""
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return None
    for child in desc.raw_description.pending_children:
        if child.workflow_type_name in _ONE_HOP_MOVEMENTS:
            return str(child.workflow_id)
    return None


_ONE_HOP_MOVEMENTS = frozenset(MOVEMENT_TYPES.values())
#: Release 4's movement types: their negotiations relay every message themselves.
_RELAYING_MOVEMENTS = frozenset(
    {"PreparationMovement", "OpeningMovement", "DevelopmentMovement", "ClosureMovement"}
)


def relays_messages(desc: WorkflowExecutionDescription) -> bool:
    """True for a negotiation of release 4 playing a movement: it takes every message itself."""
    return any(
        child.workflow_type_name in _RELAYING_MOVEMENTS
        for child in desc.raw_description.pending_children
    )


class _LastPlaying:
    """Where each negotiation's movement played when this process last looked, tried first so
    that a message or a status read costs one call to Temporal instead of two. Only a hint: a
    movement that has ended refuses a signal or update (NOT_FOUND) and a query asked only of an
    open workflow, and then the negotiation is described again."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[str, str, str], str] = OrderedDict()

    @staticmethod
    def _key(client: Client, negotiation_id: str) -> tuple[str, str, str]:
        return (client.service_client.config.target_host, client.namespace, negotiation_id)

    def get(self, client: Client, negotiation_id: str) -> str | None:
        """The movement last seen playing, if any."""
        return self._seen.get(self._key(client, negotiation_id))

    def put(self, client: Client, negotiation_id: str, target: str | None) -> None:
        """Remember where it plays now (None: forget)."""
        key = self._key(client, negotiation_id)
        self._seen.pop(key, None)
        if target is not None:
            self._seen[key] = target
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)


_LAST_PLAYING = _LastPlaying()


async def _deliver_signal(
    client: Client, negotiation_id: str, name: str, message: BaseModel, *, refuse_closed: bool
) -> None:
    """Signal the movement playing; if it ends meanwhile, look again; at last, the negotiation
    itself, which takes it (between movements), forwards it (to the one that started) or, once
    it has an outcome, records why not."""
    parent = client.get_workflow_handle(negotiation_id)
    cached = _LAST_PLAYING.get(client, negotiation_id)
    if cached is not None:
        try:
            await client.get_workflow_handle(cached).signal(name, message)
            return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise await _closed_or_missing(client, negotiation_id, err) from err
            _LAST_PLAYING.put(client, negotiation_id, None)
    try:
        for attempt in range(_ATTEMPTS):
            if refuse_closed:
                desc = await _refuse_if_ended(parent, negotiation_id, "it takes no more messages")
            else:
                desc = await parent.describe()
                if desc.typed_search_attributes.get(sa.OUTCOME):
                    break  # the negotiation records it as refused
            target = playing_movement(desc)
            if target is None and relays_messages(desc):
                break
            if target is None:
                # Between two movements (one task of the negotiation): the next is about to
                # start. Going to it keeps this message behind none that follows it.
                await asyncio.sleep(_BETWEEN * 2**attempt)
                continue
            try:
                await client.get_workflow_handle(target).signal(name, message)
                _LAST_PLAYING.put(client, negotiation_id, target)
                return
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
        await parent.signal(name, message)
    except RPCError as err:
        raise await _closed_or_missing(client, negotiation_id, err) from err


async def send_response(
    client: Client, negotiation_id: str, response: CounterpartyResponse
) -> None:
    """Deliver a counterparty response without waiting for an answer (a signal): it is taken in
    sequence by the movement playing, or recorded in the status with why not.

    Raises NegotiationClosed once the negotiation has an outcome, even while its workflow stays
    open for the retrospective (a response that races the outcome is recorded as rejected).
    """
    await _deliver_signal(client, negotiation_id, COUNTERPARTY_SIGNAL, response, refuse_closed=True)


async def send_decision(client: Client, negotiation_id: str, decision: HumanDecision) -> None:
    """Deliver a decision without waiting for an answer (a signal); refusals are recorded in the status."""
    await _deliver_signal(client, negotiation_id, DECISION_SIGNAL, decision, refuse_closed=False)


class ResponseRefused(NegotiationError):
    """The negotiation refused a counterparty response; ``code`` says why as a caller can act on
    it (``closed``, ``stale``, ``not_possible``, ``malformed``, ``reused``, ``not_accepted``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class NegotiationBusy(NegotiationError):
    """The message kept meeting a movement that had just ended: nothing was taken; send it again."""


def _refusal(err: WorkflowUpdateFailedError) -> str:
    """Why the workflow refused an update, in its own words."""
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


def _update_id(message: CounterpartyResponse | HumanDecision) -> str:
    """The update's id: the message id and what it carries. Temporal answers a repeated update
    id with the first result without asking the workflow, so an id reused for other content must
    reach the workflow, which refuses it; a true retry still gets the first receipt."""
    return f"{message.message_id}#{fingerprint(message)[:16]}"


async def _update_where_it_plays(
    client: Client,
    negotiation_id: str,
    update: str,
    arg: BaseModel,
    update_id: str,
    result_type: type[Any],
) -> Any:
    """Run an update on the movement playing (or, between movements, on the negotiation), and
    follow the negotiation when the movement ended or another started meanwhile."""
    parent = client.get_workflow_handle(negotiation_id)
    cached = _LAST_PLAYING.get(client, negotiation_id)
    for attempt in range(_ATTEMPTS):
        if attempt > 1:  # a movement ended and the next is starting: give it a moment
            await asyncio.sleep(_BETWEEN * 2 ** (attempt - 2))
        target = negotiation_id
        try:
            if cached is None:
                # Once it has an outcome, the negotiation itself answers why not (closed).
                target = playing_movement(await parent.describe()) or negotiation_id
            else:
                target, cached = cached, None
            handle = client.get_workflow_handle(target)
            answer = await handle.execute_update(update, arg, id=update_id, result_type=result_type)
            _LAST_PLAYING.put(client, negotiation_id, target if target != negotiation_id else None)
            return answer
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == MOVEMENT_PLAYING:
                continue
            raise
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND and target != negotiation_id:
                continue  # the movement ended as we sent: look again
            raise await _closed_or_missing(client, negotiation_id, err) from err
    raise NegotiationBusy(
        f"negotiation {negotiation_id} moved between movements {_ATTEMPTS} times while this was "
        "sent; nothing was taken: send it again"
    )


async def respond(
    client: Client, negotiation_id: str, response: CounterpartyResponse
) -> ResponseReceipt:
    """Deliver a counterparty response and learn at once whether it was taken (an update).

    Raises ResponseRefused with a code and the reason (closed, stale, not possible now,
    malformed, id reused), NegotiationClosed once the negotiation has an outcome. A negotiation
    started before answers at once takes it as a signal: the receipt then says so
    (``kept_for_later``), and a refusal is recorded in its status as before.
    """
    try:
        receipt: ResponseReceipt = await _update_where_it_plays(
            client, negotiation_id, RESPOND_UPDATE, response, _update_id(response), ResponseReceipt
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == NOT_ON_THIS_PATH:
            await send_response(client, negotiation_id, response)
            return ResponseReceipt(
                message_id=response.message_id,
                sequence=response.sequence,
                action=response.action,
                received_at=datetime.now(UTC),
                kept_for_later=True,
            )
        code = cause.type if isinstance(cause, ApplicationError) and cause.type else "malformed"
        raise ResponseRefused(_refusal(err), code) from err
    return receipt


async def decide(client: Client, negotiation_id: str, decision: HumanDecision) -> DecisionReceipt:
    """Deliver a decision and wait for its receipt (an update, to the movement that asked);
    raises DecisionRejected with the reason."""
    try:
        receipt: DecisionReceipt = await _update_where_it_plays(
            client, negotiation_id, DECIDE_UPDATE, decision, _update_id(decision), DecisionReceipt
        )
    except WorkflowUpdateFailedError as err:
        raise DecisionRejected(_refusal(err)) from err
    return receipt


async def answer_retrospective(
    client: Client, negotiation_id: str, answer: RetrospectiveAnswer
) -> RetrospectiveEntry:
    """Give a participant's retrospective; raises DecisionRejected when it cannot be taken."""
    handle = client.get_workflow_handle(negotiation_id)
    try:
        entry: RetrospectiveEntry = await handle.execute_update(
            NegotiationWorkflow.retrospective, answer, id=answer.message_id
        )
    except WorkflowUpdateFailedError as err:
        raise DecisionRejected(_refusal(err)) from err
    except RPCError as err:
        raise await _closed_or_missing(client, negotiation_id, err) from err
    return entry


async def get_status(client: Client, negotiation_id: str) -> NegotiationStatus:
    """The negotiation's status, open or closed, from wherever it is live: the movement playing
    holds it while it plays, the negotiation otherwise."""
    parent = client.get_workflow_handle(negotiation_id)
    try:
        cached = _LAST_PLAYING.get(client, negotiation_id)
        for _ in range(_ATTEMPTS):
            target, cached = cached or playing_movement(await parent.describe()), None
            if target is None:
                break
            status = await _live_status(client, target)
            if status is not None:
                _LAST_PLAYING.put(client, negotiation_id, target)
                return status
        _LAST_PLAYING.put(client, negotiation_id, None)
        return await parent.query(NegotiationWorkflow.status)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NegotiationNotFound(f"no negotiation {negotiation_id}") from err
        raise


async def _live_status(client: Client, movement: str) -> NegotiationStatus | None:
    """The status a movement holds, if it still plays (a query asked only of an open workflow:
    a movement that has handed back answers no more)."""
    try:
        status: NegotiationStatus = await client.get_workflow_handle(movement).query(
            STATUS_QUERY,
            result_type=NegotiationStatus,
            reject_condition=QueryRejectCondition.NOT_OPEN,
        )
    except WorkflowQueryRejectedError:
        return None
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return None
    return status


async def get_request(client: Client, negotiation_id: str) -> NegotiationRequest:
    """The request ``negotiation_id`` started from (its mandate and role cards), read from the
    first event of its history: it needs no worker. NegotiationNotFound when there is none."""
    handle = client.get_workflow_handle(negotiation_id)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            if event.HasField("workflow_execution_started_event_attributes"):
                started = event.workflow_execution_started_event_attributes
                [request] = await client.data_converter.decode(
                    started.input.payloads, [NegotiationRequest]
                )
                return request  # type: ignore[no-any-return]
            break
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    raise NegotiationNotFound(f"no negotiation {negotiation_id}")


async def ensure_open(client: Client, negotiation_id: str) -> None:
    """Raise NegotiationClosed when the negotiation has an outcome or its workflow has ended
    (terminated, say, without one); NegotiationNotFound when there is none. Needs no worker."""
    handle = client.get_workflow_handle(negotiation_id)
    try:
        await _refuse_if_ended(handle, negotiation_id, "it takes no more messages")
    except RPCError as err:
        raise await _closed_or_missing(client, negotiation_id, err) from err


async def get_result(client: Client, negotiation_id: str) -> NegotiationResult:
    """Wait for the negotiation to end and return its result with KPIs."""
    return await client.get_workflow_handle(negotiation_id, result_type=NegotiationResult).result()


async def cancel(client: Client, negotiation_id: str) -> None:
    """Ask the negotiation to end as cancelled; NegotiationClosed when it has ended already."""
    handle = client.get_workflow_handle(negotiation_id)
    try:
        # The server accepts cancelling a closed workflow and ignores it silently; and cancelling
        # one that only waits for its retrospective would end it without its result: look first.
        await _refuse_if_ended(handle, negotiation_id, "it cannot be cancelled")
        await handle.cancel()
    except RPCError as err:
        raise await _closed_or_missing(client, negotiation_id, err) from err


class NegotiationSummary(BaseModel):
    """One line of ``fitnest list``."""

    negotiation_id: str
    status: str
    movement: str | None
    playbook: str | None
    outcome: str | None
    counterparty: str | None
    awaiting: list[str]
    started_at: datetime | None


async def list_negotiations(
    client: Client, query: str | None = None, limit: int = 100
) -> list[NegotiationSummary]:
    """Negotiations from the visibility store, newest first (eventually consistent)."""
    base = "WorkflowType = 'NegotiationWorkflow'"
    found: list[NegotiationSummary] = []
    async for wf in client.list_workflows(f"{base} AND ({query})" if query else base, limit=limit):
        values = {pair.key.name: pair.value for pair in wf.typed_search_attributes}

        def get(name: str, values: dict[str, object] = values) -> object:
            return values.get(name)

        awaiting = get("AwaitingDecision")
        found.append(
            NegotiationSummary(
                negotiation_id=wf.id,
                status=wf.status.name.lower() if wf.status else "unknown",
                movement=get("NegotiationMovement"),  # type: ignore[arg-type]
                playbook=get("NegotiationPlaybook"),  # type: ignore[arg-type]
                outcome=get("NegotiationOutcome"),  # type: ignore[arg-type]
                counterparty=get("Counterparty"),  # type: ignore[arg-type]
                awaiting=list(awaiting) if isinstance(awaiting, list | tuple) else [],
                started_at=wf.start_time,
            )
        )
    return found


__all__ = [
    "READ_FAILURES",
    "DecisionRejected",
    "NegotiationBusy",
    "NegotiationClosed",
    "NegotiationNotFound",
    "ResponseReceipt",
    "ResponseRefused",
    "StartReceipt",
    "WorkflowExecutionStatus",
    "answer_retrospective",
    "cancel",
    "check_startable",
    "decide",
    "ensure_open",
    "get_request",
    "get_result",
    "get_status",
    "left_out",
    "list_negotiations",
    "playing_movement",
    "respond",
    "send_decision",
    "send_response",
    "start_negotiation",
    "unreadable_reason",
]
