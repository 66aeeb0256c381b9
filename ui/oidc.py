"""OpenID Connect sign-in at the company's identity provider: the relying party's side.

The authorization code flow with PKCE (S256): :meth:`OidcClient.begin` makes the provider URL and
the :class:`SignInFlow` (``state``, ``nonce``, code verifier, post-login target) that the session
keeps until the provider sends the person back; :meth:`OidcClient.finish` checks ``state``,
redeems the code at the token endpoint (client secret and code verifier: a code taken from the
browser is useless to anyone else, and a code redeems once) and verifies the ID token:
signature with the provider's published keys (asymmetric algorithms only: never ``none``, never
an HMAC keyed with the client secret), issuer, audience (and ``azp``), expiry, issue time and
``nonce``. Discovery and keys come from ``<issuer>/.well-known/openid-configuration``, whose
``issuer`` must be the configured one and is then the exact ``iss`` expected; keys are
fetched again once when a token names a key id not seen yet (the provider rotated).

Authlib makes the authorization request and redeems the code; joserfc verifies the ID token.
Every refusal is an :class:`OidcRefused` whose ``reason`` is shown to the person and audited.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx2
from authlib.common.security import is_secure_transport
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2 import OAuth2Error
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ui.sessions import SignInIdentity
from workers.settings import Settings

#: Signature algorithms an ID token may use: public-key ones only.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
#: Clock difference tolerated between the provider and the UI.
LEEWAY_SECONDS = 60
#: A sign-in that takes longer than this at the provider starts again.
FLOW_SECONDS = 600
#: Where the provider sends the person back, under the UI's public URL.
CALLBACK_PATH = "/login/oidc/callback"


class OidcRefused(Exception):
    """A sign-in through the provider that is refused; ``reason`` is in plain words."""

    def __init__(self, reason: str, *, who: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.who = who


class ProviderMetadata(BaseModel):
    """The parts of the provider's discovery document the UI uses."""

    model_config = ConfigDict(extra="ignore")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None
    id_token_signing_alg_values_supported: list[str] = Field(default_factory=lambda: ["RS256"])


class SignInFlow(BaseModel):
    """One sign-in under way, kept in the session until the provider sends the person back."""

    state: str
    nonce: str
    code_verifier: str
    next: str = "/"
    started: float


@dataclass(frozen=True)
class OidcConfig:
    """Where the provider is and who the UI is there."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: str = "openid email profile"
    groups_claim: str = "groups"
    provider_name: str = "your company account"

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The configuration from ``FITNEST_OIDC_*``; None when no issuer is set."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id or not settings.oidc_client_secret:
            raise ValueError(
                "FITNEST_OIDC_ISSUER is set: set FITNEST_OIDC_CLIENT_ID and "
                "FITNEST_OIDC_CLIENT_SECRET too"
            )
        issuer = settings.oidc_issuer.strip()
        if not is_secure_transport(issuer):
            raise ValueError(
                f"FITNEST_OIDC_ISSUER {issuer} must be https (plain http only on this machine's "
                "loopback, for tests)"
            )
        public = (settings.ui_public_url or f"http://{settings.ui_host}:{settings.ui_port}").rstrip(
            "/"
        )
        return cls(
            issuer=issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            redirect_uri=public + CALLBACK_PATH,
            scopes=settings.oidc_scopes,
            groups_claim=settings.oidc_groups_claim,
            provider_name=settings.oidc_provider_name,
        )


class OidcClient:
    """The UI as a relying party of one provider; discovery and keys are cached."""

    def __init__(self, config: OidcConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None

    def _client(self, **kwargs: Any) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scopes,
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
            timeout=10.0,
            **kwargs,
        )

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, read once; its issuer must be the one configured."""
        if self._metadata is None:
            url = f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
            try:
                async with httpx2.AsyncClient(timeout=10.0) as http:
                    reply = await http.get(url)
                    reply.raise_for_status()
                found = ProviderMetadata.model_validate(reply.json())
            except (httpx2.HTTPError, ValueError, ValidationError) as err:
                raise OidcRefused(
                    "the identity provider is not answering right now; try again in a moment"
                ) from err
            if found.issuer.rstrip("/") != self.config.issuer.rstrip("/"):
                raise OidcRefused("the identity provider's discovery names another issuer")
            self._metadata = found
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            try:
                async with httpx2.AsyncClient(timeout=10.0) as http:
                    reply = await http.get(meta.jwks_uri)
                    reply.raise_for_status()
                self._keys = KeySet.import_key_set(reply.json())
            except (httpx2.HTTPError, ValueError, JoseError) as err:
                raise OidcRefused("the identity provider's signing keys cannot be read") from err
        return self._keys

    async def begin(self, next_path: str) -> tuple[str, SignInFlow]:
        """The provider URL to send the person to, and the flow for their session to keep."""
        meta = await self.metadata()
        flow = SignInFlow(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
            next=next_path,
            started=self._clock(),
        )
        async with self._client() as client:
            url, _state = client.create_authorization_url(
                meta.authorization_endpoint,
                state=flow.state,
                code_verifier=flow.code_verifier,
                nonce=flow.nonce,
            )
        return url, flow

    async def finish(self, flow: SignInFlow, state: str, code: str) -> SignInIdentity:
        """The identity the provider vouches for, once ``state``, code and ID token check."""
        if not secrets.compare_digest(flow.state.encode(), state.encode()):
            raise OidcRefused("the sign-in answer does not belong to this sign-in (state differs)")
        if self._clock() - flow.started > FLOW_SECONDS:
            raise OidcRefused("the sign-in took too long; start again")
        tokens = await self.redeem(flow, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("the identity provider sent no ID token")
        return await self.verify(id_token, flow.nonce)

    async def redeem(self, flow: SignInFlow, code: str) -> dict[str, Any]:
        """The provider's token response for ``code`` (client secret and PKCE verifier sent)."""
        meta = await self.metadata()
        try:
            async with self._client() as client:
                found = await client.fetch_token(
                    meta.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=flow.code_verifier,
                    redirect_uri=self.config.redirect_uri,
                )
        except (OAuth2Error, OAuthError) as err:
            raise OidcRefused(
                "the identity provider refused the sign-in code "
                f"({err.error or 'error'}: a code is good once, for this application only)"
            ) from err
        except httpx2.HTTPError as err:
            raise OidcRefused("the identity provider is not answering right now") from err
        return dict(found)

    async def verify(self, id_token: str, nonce: str) -> SignInIdentity:
        """The identity an ID token vouches for, once signature, issuer, audience, expiry and
        nonce check."""
        meta = await self.metadata()
        algorithms = [a for a in meta.id_token_signing_alg_values_supported if a in ALGORITHMS]
        token = None
        for refresh in (False, True):
            try:
                keys = await self._key_set(refresh=refresh)
                token = jwt.decode(id_token, keys, algorithms=algorithms or ["RS256"])
                break
            except JoseError as err:
                if refresh or not _unknown_key(err):
                    raise OidcRefused(_signature_reason(id_token, err)) from err
        assert token is not None
        self._check_claims(token.claims, nonce, meta.issuer)
        return self._identity(token.claims, id_token, meta.issuer)

    def _check_claims(self, claims: dict[str, Any], nonce: str, issuer: str) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=LEEWAY_SECONDS,
            # Exactly as discovery spells it (some providers' issuers end in a slash).
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as err:
            raise OidcRefused("the ID token has expired") from err
        except (InvalidClaimError, MissingClaimError) as err:
            raise OidcRefused(_claim_reason(getattr(err, "claim", ""))) from err
        except JoseError as err:
            raise OidcRefused(f"the ID token is not valid ({err.error})") from err
        audience = claims["aud"]
        several = isinstance(audience, list) and len(audience) > 1
        if several and claims.get("azp") != self.config.client_id:
            raise OidcRefused(_claim_reason("azp"))
        iat = claims["iat"]
        if not isinstance(iat, int | float) or iat > self._clock() + LEEWAY_SECONDS:
            raise OidcRefused(_claim_reason("iat"))

    def _identity(self, claims: dict[str, Any], id_token: str, issuer: str) -> SignInIdentity:
        email = claims.get("email")
        groups = claims.get(self.config.groups_claim) or ()
        if isinstance(groups, str):
            groups = (groups,)
        return SignInIdentity(
            method="oidc",
            issuer=issuer,
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else "",
            email_verified=claims.get("email_verified") is True,
            groups=tuple(str(g) for g in groups if isinstance(g, str))[:200],
            id_token=id_token,
        )

    async def end_session_url(self, id_token: str, after: str) -> str | None:
        """Where to send the person to end the provider's session too, if it offers that."""
        meta = await self.metadata()
        if not meta.end_session_endpoint:
            return None
        query = urlencode(
            {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": after,
                "client_id": self.config.client_id,
            }
        )
        separator = "&" if "?" in meta.end_session_endpoint else "?"
        return f"{meta.end_session_endpoint}{separator}{query}"


def _unknown_key(err: JoseError) -> bool:
    return err.error in {"missing_key", "invalid_key_id"}


def _signature_reason(id_token: str, err: JoseError) -> str:
    header = id_token.split(".", 1)[0]
    if err.error in {"unsupported_algorithm", "missing_algorithm"} or _alg_none(header):
        return "the ID token is not signed with an algorithm the UI accepts (unsigned or HMAC)"
    return "the ID token's signature does not verify with the identity provider's keys"


def _alg_none(header: str) -> bool:
    try:
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except ValueError:
        return False
    return isinstance(data, dict) and str(data.get("alg", "")).lower() == "none"


_CLAIM_REASONS = {
    "iss": "the ID token was issued by another provider",
    "aud": "the ID token was issued to another application",
    "azp": "the ID token was issued to another application",
    "nonce": "the ID token does not belong to this sign-in (nonce differs)",
    "sub": "the ID token names nobody (no subject)",
    "iat": "the ID token's issue time is not plausible",
    "exp": "the ID token has no expiry",
}


def _claim_reason(claim: str) -> str:
    return _CLAIM_REASONS.get(claim, f"the ID token's {claim or 'claims'} do not check")
