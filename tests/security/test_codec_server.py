"""The codec server decodes for holders of the token and for the allowed Web UI, and nobody else."""

from __future__ import annotations

import json

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from tests.encryption import DATA_CONVERTER
from tests.security.conftest import UI_ORIGIN, CodecServer, Reply, http
from workers.client import data_converter_for

SECRET = {"walk_away": "48213.77", "note": "our floor is 48k"}


async def sealed_body() -> dict:
    payloads = await DATA_CONVERTER.encode([SECRET])
    assert SECRET["walk_away"].encode() not in payloads[0].data
    return json.loads(json_format.MessageToJson(Payloads(payloads=payloads)))


async def decode(url: str, **headers: str) -> Reply:
    """POST the sealed secret to ``url`` with ``headers``."""
    return await http("POST", url, await sealed_body(), **headers)


def opened(body: dict) -> list:
    payloads = json_format.ParseDict(body, Payloads()).payloads
    return [json.loads(p.data) for p in payloads]


async def test_a_bearer_token_holder_gets_the_payloads_decoded(codec_server: CodecServer):
    reply = await decode(
        codec_server.url + "/decode",
        Authorization=f"Bearer {codec_server.token}",
        X_Namespace="default",
    )
    assert reply.status == 200, reply.body
    assert opened(reply.body) == [SECRET]


async def test_a_request_without_a_token_is_refused(codec_server: CodecServer):
    reply = await decode(codec_server.url + "/decode")
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert "48213.77" not in json.dumps(reply.body)


async def test_a_wrong_token_is_refused(codec_server: CodecServer):
    reply = await decode(
        codec_server.url + "/decode",
        Authorization=f"Bearer {codec_server.token}-not",
    )
    assert reply.status == 401


async def test_a_browser_origin_that_is_not_allowed_is_refused_even_with_the_token(
    codec_server: CodecServer,
):
    reply = await decode(
        codec_server.url + "/decode",
        Authorization=f"Bearer {codec_server.token}",
        Origin="http://evil.example",
    )
    assert reply.status == 403
    assert "access-control-allow-origin" not in reply.headers


async def test_preflight_is_answered_for_the_web_ui_origin_only(codec_server: CodecServer):
    asked = {
        "Access_Control_Request_Method": "POST",
        "Access_Control_Request_Headers": "x-namespace",
    }
    allowed = await http("OPTIONS", codec_server.web_ui_url + "/decode", Origin=UI_ORIGIN, **asked)
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "X-Namespace" in allowed.headers["access-control-allow-headers"]
    refused = await http(
        "OPTIONS", codec_server.web_ui_url + "/decode", Origin="http://evil.example", **asked
    )
    assert refused.status == 403
    assert "access-control-allow-origin" not in refused.headers


async def test_there_is_no_encode_for_operators(codec_server: CodecServer):
    body = json.loads(
        json_format.MessageToJson(
            Payloads(payloads=DATA_CONVERTER.payload_converter.to_payloads([SECRET]))
        )
    )
    for url in (codec_server.url + "/encode", codec_server.web_ui_url + "/encode"):
        reply = await http(
            "POST", url, body, Authorization=f"Bearer {codec_server.token}", Origin=UI_ORIGIN
        )
        assert reply.status == 404, url
        assert "only decodes" in reply.body["detail"]
    preflight = await http("OPTIONS", codec_server.url + "/encode", Origin=UI_ORIGIN)
    assert preflight.status == 404


async def test_the_web_ui_endpoint_decodes_for_the_allowed_origin_as_the_browser_sends_it(
    codec_server: CodecServer,
):
    # The Web UI appends "?preserveStorageRefs=true" and sends X-Namespace, no Authorization.
    reply = await decode(
        codec_server.web_ui_url + "/decode?preserveStorageRefs=true",
        Origin=UI_ORIGIN,
        X_Namespace="default",
    )
    assert reply.status == 200, reply.body
    assert reply.headers["access-control-allow-origin"] == UI_ORIGIN
    assert opened(reply.body) == [SECRET]


async def test_the_web_ui_endpoint_needs_its_key_and_a_browser_origin(codec_server: CodecServer):
    body = await sealed_body()
    wrong_key = await http(
        "POST", codec_server.url + "/web-ui/0123456789abcdef/decode", body, Origin=UI_ORIGIN
    )
    assert wrong_key.status == 401
    no_origin = await http("POST", codec_server.web_ui_url + "/decode", body)
    assert no_origin.status == 401


async def test_another_namespace_is_refused(codec_server: CodecServer):
    reply = await decode(
        codec_server.url + "/decode",
        Authorization=f"Bearer {codec_server.token}",
        X_Namespace="someone-else",
    )
    assert reply.status == 403


async def test_a_payload_sealed_with_an_unknown_key_gets_a_clear_error(codec_server, tmp_path):
    foreign = await data_converter_for(tmp_path / "other.json").encode([SECRET])
    body = json.loads(json_format.MessageToJson(Payloads(payloads=foreign)))
    reply = await http(
        "POST", codec_server.url + "/decode", body, Authorization=f"Bearer {codec_server.token}"
    )
    assert reply.status == 422
    assert "not hold" in reply.body["detail"]
