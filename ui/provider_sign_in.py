"""Signing in through the company's identity provider: the two pages of the flow.

``GET /login/oidc`` keeps a fresh :class:`ui.oidc.SignInFlow` in the session and sends the person
to the provider; the provider sends them back to ``GET /login/oidc/callback`` with a code and the
``state``. Whatever goes wrong (an answer that does not belong to this browser's sign-in, a code
the provider refuses, an ID token that does not check, an identity the directory does not let in,
a post-login target on another site) ends on a page that says why, and in the audit log; nobody
is signed in by a refused attempt, and a refused flow cannot be retried: it starts again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from ui.audit import AccessOutcome, AuditLog, access_attempt
from ui.directory import Directory
from ui.oidc import CALLBACK_PATH, OidcClient, OidcRefused, SignInFlow
from ui.pages import is_local_path, render
from ui.security import NoEntry, client_address, match_identity, sign_in
from ui.sessions import SignInIdentity

router = APIRouter(include_in_schema=False)

#: Where the session keeps the sign-in under way.
_FLOW = "oidc_flow"
#: The longest provider error text shown or audited.
_ERROR_CHARS = 200


async def _refused(
    request: Request,
    status: int,
    title: str,
    reason: str,
    *,
    outcome: AccessOutcome = AccessOutcome.REFUSED,
    identity: SignInIdentity | None = None,
    user: str = "",
) -> HTMLResponse:
    """The page that says why, after the audit record that says so too."""
    audit: AuditLog = request.app.state.audit
    await audit.append(
        access_attempt(
            "oidc_sign_in",
            user,
            client_address(request),
            outcome,
            reason,
            identity=identity.label if identity else "",
        )
    )
    return render(
        request,
        "sign_in_refused.html",
        status,
        title=title,
        reason=reason,
        identity=identity,
    )


def _provider(request: Request) -> OidcClient | None:
    return request.app.state.oidc  # type: ignore[no-any-return]


@router.get("/login/oidc", response_model=None)
async def begin(request: Request, next: str = "/") -> Response:
    """Send the person to the identity provider; a post-login target off this site is refused."""
    oidc = _provider(request)
    if oidc is None:
        return render(
            request,
            "error.html",
            404,
            title="Not configured",
            detail="sign-in through an identity provider is not configured here",
        )
    if not is_local_path(next):
        return await _refused(
            request,
            400,
            "Sign-in refused",
            "the page to return to after sign-in is not on this site (an open redirect)",
        )
    try:
        url, flow = await oidc.begin(next)
    except OidcRefused as err:
        return await _refused(request, 503, "Identity provider unavailable", err.reason)
    request.session[_FLOW] = flow.model_dump()
    return RedirectResponse(url, status_code=303)


@router.get(CALLBACK_PATH, response_model=None)
async def callback(
    request: Request,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    """Finish the sign-in: check the provider's answer and sign in the directory entry it names."""
    oidc = _provider(request)
    # Taken out of the session whatever happens next: an answer is good once.
    kept = request.session.pop(_FLOW, None)
    if oidc is None:
        return render(request, "error.html", 404, title="Not configured", detail="no provider")
    if error:
        said = f"{error}: {error_description}" if error_description else error
        return await _refused(
            request,
            401,
            "Not signed in",
            f"the identity provider did not sign you in ({said[:_ERROR_CHARS]})",
        )
    try:
        flow = SignInFlow.model_validate(kept)
    except ValidationError:
        return await _refused(
            request,
            400,
            "Sign-in refused",
            "no sign-in is under way in this browser (it ended, or this answer was used before)",
        )
    if not code or not state:
        return await _refused(request, 400, "Sign-in refused", "the answer has no code or state")
    try:
        identity = await oidc.finish(flow, state, code)
    except OidcRefused as err:
        return await _refused(request, 401, "Sign-in refused", err.reason)
    directory: Directory = request.app.state.directory
    try:
        approver = match_identity(directory, identity)
    except NoEntry as err:
        return await _refused(
            request,
            403,
            "No access to Fitnest",
            err.reason,
            outcome=AccessOutcome.NO_ENTRY,
            identity=identity,
        )
    sign_in(request, approver, identity)
    audit: AuditLog = request.app.state.audit
    await audit.append(
        access_attempt(
            "oidc_sign_in",
            approver.user,
            client_address(request),
            AccessOutcome.ACCEPTED,
            identity=identity.label,
        )
    )
    target = flow.next if is_local_path(flow.next) else "/"
    return RedirectResponse(target, status_code=303)
