"""Errors as RFC 9457 problem details (``application/problem+json``) for the JSON API.

Every refusal has a stable ``type`` (a relative URI naming the kind of problem), a ``title`` that
is the same for every problem of that type, and a ``detail`` that says what happened this time.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Invalid input",
    429: "Too many attempts",
    503: "Temporal unavailable",
}


class FieldError(BaseModel):
    """One invalid field of the input."""

    field: str = Field(description="Where in the input, e.g. 'body.mandate.deadline'.")
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(description="Identifies the kind of problem, e.g. '/problems/not-found'.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, in plain words.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(
        default=None, description="Every invalid field, for validation problems."
    )


class ProblemError(Exception):
    """Raise to answer with a problem; ``kind`` becomes ``/problems/<kind>``."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(request: Request, error: ProblemError) -> JSONResponse:
    """The problem as a response (with its headers), with a WWW-Authenticate challenge on 401."""
    body = Problem(
        type=f"/problems/{error.kind}",
        title=_TITLES.get(error.status, "Error"),
        status=error.status,
        detail=error.detail,
        instance=request.url.path,
        errors=error.errors,
    )
    headers = dict(error.headers)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fitnest"'
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


#: The longest input a validation message quotes back (a short word, like a playbook's name).
_QUOTED_INPUT = 40


def field_errors(errors: Any) -> list[FieldError]:
    """Pydantic's errors as field errors ('body.mandate.deadline: ...'), quoting a short input."""
    return [
        FieldError(field=".".join(str(p) for p in e.get("loc", ())), message=_message(e))
        for e in errors
    ]


def _message(error: dict[str, Any]) -> str:
    message, given = str(error.get("msg", "")), error.get("input")
    if isinstance(given, str) and len(given) <= _QUOTED_INPUT and given.isprintable():
        return f"{message} (got {given!r})"
    return message


def validation_problem(error: RequestValidationError) -> ProblemError:
    """A request that failed validation, with every field named; a body that is not JSON is a 400."""
    if any(e.get("type") == "json_invalid" for e in error.errors()):
        return not_json()
    found = field_errors(error.errors())
    summary = "; ".join(f"{e.field}: {e.message}" for e in found[:5])
    return ProblemError(422, "validation", f"the input is not valid: {summary}", found)


def not_json() -> ProblemError:
    """A body that cannot be read as JSON (malformed, or not even text)."""
    return ProblemError(400, "not-json", "the body is not JSON (send application/json)")


#: OpenAPI description of the problem responses each API operation may give.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": title, "content": {PROBLEM_JSON: {}}}
    for status, title in _TITLES.items()
    if status in (401, 404, 409, 422, 429, 503)
}

#: The problem an operation with a JSON body may give as well: a body that is not JSON.
BODY_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON", "content": {PROBLEM_JSON: {}}}
}
