"""The approver's pages: sign-in, inbox, negotiation with its decision form, KPIs.

Server-rendered; a GET never changes anything; every POST carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from negotiation.models import (
    Identifier,
    NegotiationRequest,
    NegotiationStatus,
    PendingDecision,
    Verdict,
)
from negotiation.report import aggregate
from negotiation.terms import NUMERIC_TERMS
from starters.client import NegotiationNotFound
from starters.report import collect_results
from ui.audit import AttemptOutcome, attempt_by
from ui.cluster import Connected, Temporal
from ui.decisions import DecisionForm, take_decision
from ui.directory import Approver, Directory, DirectoryFile, hash_secret, needs_rehash
from ui.inbox import InboxFilters, InboxItem, inbox_page
from ui.kpi_charts import kpi_charts
from ui.negotiations import (
    NegotiationView,
    author_of,
    clause_position,
    entitlement,
    read_negotiation,
    term_rows,
)
from ui.oidc import CALLBACK_PATH, OidcClient, OidcRefused
from ui.security import (
    Forbidden,
    Throttled,
    check_csrf,
    checked_credentials,
    csrf_token,
    current_approver,
    sign_in,
    sign_out,
    signed_in,
)
from workers.client import ClusterUnreachable

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)

Signed = Annotated[Approver, Depends(current_approver)]

#: Negotiations per inbox page: one status query each.
INBOX_PAGE_SIZE = 25
#: Closed negotiations the KPI page reads at most.
KPI_LIMIT = 500


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with what every page needs: the approver, the CSRF token, a pending flash message."""
    return templates.TemplateResponse(
        request,
        name,
        {
            "approver": signed_in(request),
            "csrf": csrf_token(request),
            "flash": request.session.pop("flash", None),
            "oidc": request.app.state.oidc,
            **context,
        },
        status_code=status_code,
    )


def is_local_path(target: str) -> bool:
    """True for a path on this site (``/x``); never another site (``//evil``, ``https:``...)."""
    return (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 32 for c in target)
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    return target if target and is_local_path(target) else "/"


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The sign-in form (and the identity provider's button, when one is configured)."""
    return render(request, "login.html", next=_safe_next(next))


@router.post("/login", response_model=None)
async def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Sign in; a wrong name or password answers 401 with the form again, and after too many
    failures 429 with when to try again (``ui.throttle``)."""
    check_csrf(request, csrf)
    directory: Directory = request.app.state.directory
    user = username.strip()
    try:
        approver = await checked_credentials(
            request, "sign_in", user, lambda: directory.authenticate(user, password)
        )
    except Throttled as err:
        paused = render(request, "login.html", 429, next=_safe_next(next), error=err.detail)
        paused.headers["Retry-After"] = str(err.retry_after)
        return paused
    if approver is None:
        return render(
            request, "login.html", 401, next=_safe_next(next), error="Wrong user name or password."
        )
    if approver.password_hash and needs_rehash(approver.password_hash):
        await _rehash(request, approver.user, approver.password_hash, password)
    sign_in(request, approver)
    return RedirectResponse(_safe_next(next), status_code=303)


async def _rehash(request: Request, user: str, old_hash: str, password: str) -> None:
    """An older hash (scrypt) becomes Argon2id in the directory file, now the password is known."""
    source: DirectoryFile | None = request.app.state.directory_file
    if source is None:
        return
    new_hash = await asyncio.to_thread(hash_secret, password)
    if await asyncio.to_thread(source.rehash, user, old_hash, new_hash):
        request.app.state.directory = source.current()


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
    """Sign out; after a sign-in through the identity provider, end the provider's session too
    where it offers that (it sends the person back to the sign-in page)."""
    check_csrf(request, csrf)
    ended = sign_out(request)
    oidc: OidcClient | None = request.app.state.oidc
    if oidc is not None and ended is not None and ended.method == "oidc" and ended.id_token:
        try:
            after = oidc.config.redirect_uri.removesuffix(CALLBACK_PATH) + "/login"
            url = await oidc.end_session_url(ended.id_token, after)
        except OidcRefused:
            url = None  # the provider is not answering: our session has ended all the same
        if url:
            return RedirectResponse(url, status_code=303)
    return RedirectResponse("/login", status_code=303)


@router.get("/healthz", response_class=HTMLResponse)
async def health() -> HTMLResponse:
    """Up and answering (no Temporal call)."""
    return HTMLResponse("ok")


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> HTMLResponse:
    """The API's documentation, rendered from its OpenAPI document (also at /openapi.json)."""
    schema = request.app.openapi()
    operations = [
        (path, method.upper(), op)
        for path, methods in schema.get("paths", {}).items()
        for method, op in methods.items()
    ]
    return render(request, "docs.html", operations=operations, info=schema.get("info", {}))


@router.get("/", response_class=HTMLResponse)
async def inbox(
    request: Request,
    approver: Signed,
    temporal: Connected,
    playbook: str | None = None,
    counterparty: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """The decisions waiting for me, across negotiations."""
    state = request.app.state
    now = datetime.now(UTC)

    def mine(
        pending: PendingDecision, neg: NegotiationRequest, status: NegotiationStatus
    ) -> InboxItem | None:
        allowed = entitlement(approver, pending, neg, status, now)
        # Self-approval is refused on the page with its reason; the decision is still mine to see.
        if allowed.allowed or allowed.own_terms:
            who = allowed.acting_for.name if allowed.acting_for else None
            return InboxItem(pending=pending, acting_for=who)
        return None

    filters = InboxFilters(
        roles=state.directory.inbox_roles(approver),
        playbook=playbook or None,
        counterparty=(counterparty or "").strip() or None,
        task_queue=state.settings.task_queue,
    )
    found = await inbox_page(
        temporal.client,
        temporal.requests,
        filters,
        mine,
        tokens=state.page_tokens,
        page_size=INBOX_PAGE_SIZE,
        token=page,
    )
    return render(
        request,
        "inbox.html",
        page=found,
        rows=[r for r in found.rows if r.items or r.error],
        filters=filters,
        playbooks=["conductor_led", "collaborative_ensemble", "automated"],
        now=now,
    )


@router.get("/negotiations/{negotiation_id}", response_class=HTMLResponse)
async def negotiation_page(
    request: Request, negotiation_id: Identifier, approver: Signed, temporal: Connected
) -> HTMLResponse:
    """The mandate beside the terms, offers, reviews, pending decisions and the audit trail."""
    return await _negotiation(request, temporal, negotiation_id, approver)


async def _negotiation(
    request: Request,
    temporal: Temporal,
    negotiation_id: str,
    approver: Approver,
    status_code: int = 200,
    result: Any = None,
) -> HTMLResponse:
    state = request.app.state
    view = await read_negotiation(temporal.client, temporal.requests, negotiation_id)
    if view.request.participant(approver.participant) is None:
        raise Forbidden("you are not a participant in this negotiation")
    now = datetime.now(UTC)
    status = view.status
    pending = [
        (p, entitlement(approver, p, view.request, status, now)) for p in status.pending_decisions
    ]
    return render(
        request,
        "negotiation.html",
        status_code,
        view=view,
        status=status,
        mandate=view.request.mandate,
        rows=term_rows(view.request, status),
        clauses_ours=clause_position(status.our_terms.terms.non_standard_clauses, view.request)
        if status.our_terms
        else None,
        clauses_theirs=clause_position(status.their_terms.terms.non_standard_clauses, view.request)
        if status.their_terms
        else None,
        pending=pending,
        authors={o.version: author_of(status, o.version) for o in status.offers},
        attempts=[
            a
            for a in await state.audit.for_negotiation(negotiation_id)
            if a.outcome != AttemptOutcome.ACCEPTED
        ],
        refused_signals=[m for m in status.rejected_messages if m.kind == "human_decision"],
        result=result,
        message_id=f"ui-{uuid.uuid4()}",
        numeric_terms=NUMERIC_TERMS,
        verdicts=[v.value for v in Verdict],
        now=now,
    )


@router.post("/negotiations/{negotiation_id}/decisions", response_model=None)
async def decide_on(
    request: Request,
    negotiation_id: Identifier,
    approver: Signed,
    request_id: Annotated[str, Form()],
    verdict: Annotated[str, Form()],
    message_id: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    terms_version: Annotated[int | None, Form()] = None,
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Approve, reject or revise; the receipt (after a redirect) or the reason, in plain words."""
    state = request.app.state
    view: NegotiationView | None = None

    async def audited(outcome: AttemptOutcome, reason: str) -> None:
        """An attempt that ended before ``take_decision`` could audit it; on the negotiation's
        trail only once the negotiation was read (before, its id may be anything)."""
        await state.audit.append(
            attempt_by(
                approver,
                negotiation_id=negotiation_id,
                request_id=request_id,
                verdict=verdict,
                message_id=message_id,
                outcome=outcome,
                reason=reason,
                terms_version=terms_version,
            ),
            on_trail=view is not None,
        )

    try:
        check_csrf(request, csrf)
    except Forbidden as err:
        await audited(AttemptOutcome.REFUSED_BY_UI, err.reason)
        raise
    form = await request.form()
    revised = {name: str(form.get(f"terms.{name}", "")) for name in NUMERIC_TERMS}
    revised["non_standard_clauses"] = str(form.get("terms.non_standard_clauses", ""))
    try:
        temporal = await state.cluster.temporal()
        view = await read_negotiation(temporal.client, temporal.requests, negotiation_id)
        result = await take_decision(
            temporal.client,
            state.audit,
            approver,
            view,
            DecisionForm(
                request_id=request_id,
                verdict=verdict,
                message_id=message_id,
                terms_version=terms_version,
                comment=comment,
                revised_terms=revised if verdict == Verdict.REVISE.value else None,
            ),
        )
    except (RPCError, RPCTimeoutOrCancelledError, ClusterUnreachable) as err:
        # Answered with a 503. An update that timed out may still have been taken: the same
        # decision sent again (same message id) returns the first receipt.
        await audited(AttemptOutcome.FAILED, f"Temporal did not answer ({type(err).__name__})")
        raise
    except NegotiationNotFound as err:
        await audited(AttemptOutcome.FAILED, str(err))
        raise
    if result.receipt is not None:
        request.session["flash"] = {"kind": "ok", "text": result.message}
        return RedirectResponse(f"/negotiations/{negotiation_id}", status_code=303)
    return await _negotiation(
        request, temporal, negotiation_id, approver, result.status_code, result
    )


@router.get("/kpis", response_class=HTMLResponse)
async def kpis(request: Request, approver: Signed, temporal: Connected) -> HTMLResponse:
    """Charts of the closed negotiations: cycle time by playbook, outcomes, compliance rate."""
    found = await collect_results(
        temporal.client, task_queue=request.app.state.settings.task_queue, limit=KPI_LIMIT
    )
    report = aggregate(found.results, found.left_out)
    return render(request, "kpis.html", report=report, charts=kpi_charts(report))
