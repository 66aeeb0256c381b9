"""The codec server: decodes sealed payloads for authorised operators (Temporal Web UI and CLI).

It speaks the Temporal remote codec protocol: ``POST .../decode`` with a JSON ``Payloads`` body
(protobuf JSON) and the ``X-Namespace`` header; only the last path segment names the operation,
so the endpoint may sit under any prefix. It has no ``/encode``: an operator reads, never forges.

Who may decode:
- a request with ``Authorization: Bearer <FITNEST_CODEC_TOKEN>`` (the ``temporal`` CLI with
  ``--codec-auth``, scripts);
- the local Web UI, which cannot send that header (it sends one only with OIDC login, over
  https): ``make up`` gives the dev server the endpoint ``/web-ui/<key>``, where the key is
  derived from the token (see :func:`web_ui_path`), and such requests must come from an allowed
  browser origin.
A browser request from any other origin is refused, preflight included. ``fitnest codec-server``
runs it; it refuses to start without a token or a keyring.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from workers.codec import KeyringError

#: Path prefix of the Web UI's endpoint; the next segment is :func:`web_ui_key`.
WEB_UI_PREFIX = "web-ui"
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization, Authorization-Extras"


def web_ui_key(token: str) -> str:
    """The secret path segment of the Web UI's endpoint: derived from, but not revealing, the token.

    The Web UI publishes its codec endpoint to whoever can open it, so the bearer token itself
    must not be in that URL.
    """
    return hmac.new(token.encode(), b"fitnest-web-ui-codec", hashlib.sha256).hexdigest()[:32]


def web_ui_path(token: str) -> str:
    """The endpoint path to give ``temporal server start-dev --ui-codec-endpoint``."""
    return f"/{WEB_UI_PREFIX}/{web_ui_key(token)}"


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class CodecGate:
    """Who may decode: the bearer token, or the Web UI's key from an allowed origin."""

    def __init__(self, token: str, allowed_origins: Sequence[str], namespace: str) -> None:
        if not token:
            raise ValueError("the codec server needs a token (FITNEST_CODEC_TOKEN)")
        self.token = token
        self.ui_key = web_ui_key(token)
        self.origins = {o.rstrip("/") for o in allowed_origins}
        self.namespace = namespace

    def cors(self, origin: str | None) -> dict[str, str]:
        """CORS headers for an allowed ``origin`` (none for requests without one)."""
        if origin is None:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    def refusal(self, request: Request, prefix: str) -> JSONResponse | None:
        """Why ``request`` may not decode, as a response; ``None`` when it may."""
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins:
            return _problem(403, f"origin {origin} is not allowed (FITNEST_CODEC_ALLOWED_ORIGINS)")
        namespace = request.headers.get("x-namespace")
        if namespace is not None and namespace != self.namespace:
            return _problem(
                403, f"this codec server decodes namespace {self.namespace}, not {namespace}"
            )
        if self._bearer_ok(request.headers.get("authorization")):
            return None
        if origin is not None and self._web_ui_ok(prefix):
            return None
        return _problem(
            401,
            "a valid bearer token is required (Authorization: Bearer <FITNEST_CODEC_TOKEN>)",
            {"WWW-Authenticate": "Bearer", **self.cors(origin)},
        )

    def _bearer_ok(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token)

    def _web_ui_ok(self, prefix: str) -> bool:
        parts = prefix.strip("/").split("/")
        return (
            len(parts) >= 2
            and parts[-2] == WEB_UI_PREFIX
            and hmac.compare_digest(parts[-1], self.ui_key)
        )


def create_app(
    codec: PayloadCodec, *, token: str, allowed_origins: Sequence[str], namespace: str
) -> FastAPI:
    """The codec server for ``codec`` (the payload codec of the workers)."""
    gate = CodecGate(token, allowed_origins, namespace)
    app = FastAPI(title="Fitnest codec server", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness, for `make up` and probes; reveals nothing."""
        return {"status": "ok"}

    @app.options("/{path:path}")
    async def preflight(path: str, request: Request) -> Response:
        """CORS preflight: only for ``decode`` and only from an allowed origin."""
        origin = request.headers.get("origin")
        if origin is None or origin.rstrip("/") not in gate.origins:
            return _problem(403, f"origin {origin} is not allowed")
        if path.rstrip("/").rsplit("/", 1)[-1] != "decode":
            return _problem(404, "this codec server only decodes")
        headers = {
            **gate.cors(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        return Response(status_code=204, headers=headers)

    @app.post("/{path:path}")
    async def operation(path: str, request: Request) -> Response:
        """``.../decode``; anything else (``/encode`` included) does not exist here."""
        prefix, _, last = path.rstrip("/").rpartition("/")
        if last != "decode":
            return _problem(404, "this codec server only decodes: there is no encode for operators")
        refused = gate.refusal(request, prefix)
        if refused is not None:
            return refused
        headers = gate.cors(request.headers.get("origin"))
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, DecodeError, UnicodeDecodeError) as err:
            return _problem(400, f"the body is not a Payloads JSON document: {err}", headers)
        try:
            decoded = await codec.decode(payloads.payloads)
        except KeyringError as err:
            return _problem(422, str(err), headers)
        body = json_format.MessageToJson(Payloads(payloads=decoded))
        return Response(body, media_type="application/json", headers=headers)

    return app


def main() -> None:
    """Entry point of ``fitnest codec-server``: serve until Ctrl-C; exit 2 without token or keys."""
    import sys

    import uvicorn

    from workers.client import data_converter
    from workers.settings import Settings

    settings = Settings()
    if not settings.codec_token:
        print(
            "error: set FITNEST_CODEC_TOKEN: the codec server never decodes for anyone",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        codec = data_converter(settings).payload_codec
    except KeyringError as err:
        print(f"error: the codec server cannot start: {err}", file=sys.stderr)
        sys.exit(2)
    assert codec is not None
    app = create_app(
        codec,
        token=settings.codec_token,
        allowed_origins=settings.allowed_origins,
        namespace=settings.namespace,
    )
    print(
        f"codec server on http://{settings.codec_host}:{settings.codec_port} "
        f"(decode only; origins {', '.join(settings.allowed_origins)})",
        flush=True,
    )
    uvicorn.run(app, host=settings.codec_host, port=settings.codec_port, log_level="warning")


if __name__ == "__main__":
    main()
