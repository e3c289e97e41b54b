"""Keycloak mode: access tokens of a Keycloak realm, checked per request without calling Keycloak.

Validation is local: PyJWT with pinned algorithms, issuer, audience and time
claims, against the realm's cached signing keys (`keys.JwksCache`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2AuthorizationCodeBearer

from src.core.auth_settings import KeycloakSettings
from src.core.config import Settings
from src.core.logging import get_logger
from src.core.security.identity import AuthError, AuthUnavailableError, InvalidTokenError, Principal
from src.core.security.keycloak.keys import JwksCache
from src.core.security.tokens import VerifiedTokens

log = get_logger(__name__)

# /docs offers both: paste an access token, or log in through Keycloak (authorization code + PKCE;
# the client must allow the redirect URI <this API>/docs/oauth2-redirect and this API's origin).
# Built at import, before settings are read: `install_auth` fills in the realm's URLs, so that a bad
# configuration stops in `create_app` with one line, not with a traceback while importing.
pasted_token = HTTPBearer(
    scheme_name="BearerAuth",
    bearerFormat="JWT",
    description="Paste a Keycloak access token.",
    auto_error=False,
)
keycloak_login = OAuth2AuthorizationCodeBearer(
    authorizationUrl="/protocol/openid-connect/auth",
    tokenUrl="/protocol/openid-connect/token",
    scopes={"openid": "OpenID Connect"},
    scheme_name="KeycloakLogin",
    auto_error=False,  # the dependencies decide: anonymous callers are welcome on OptionalUser routes
)


def _describe_realm(config: KeycloakSettings) -> None:
    """Point the /docs security schemes at the configured realm."""
    pasted_token.model.description = f"Paste a Keycloak access token of realm `{config.realm}`."
    login = keycloak_login.model
    login.description = f"Log in with Keycloak (client `{config.client_id}`, authorization code + PKCE)."
    flow = login.flows.authorizationCode  # type: ignore[attr-defined]
    flow.authorizationUrl = f"{config.realm_url}/protocol/openid-connect/auth"
    flow.tokenUrl = f"{config.realm_url}/protocol/openid-connect/token"


async def bearer_token(
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(pasted_token)],
    token: Annotated[str | None, Depends(keycloak_login)],
) -> str | None:
    """The bearer token, however it was obtained; both schemes read the same `Authorization` header."""
    return token


def roles_from_claims(claims: Mapping[str, Any], client_id: str) -> tuple[frozenset[str], frozenset[str]]:
    """(roles, permissions): realm and client roles; permissions are client roles plus OAuth scopes."""
    realm_roles = _strings(_mapping(claims.get("realm_access")).get("roles"))
    client_roles = _strings(_mapping(_mapping(claims.get("resource_access")).get(client_id)).get("roles"))
    scope = claims.get("scope")
    scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    return realm_roles | client_roles, client_roles | scopes


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> frozenset[str]:
    return frozenset(v for v in value if isinstance(v, str)) if isinstance(value, list) else frozenset()


class KeycloakBackend:
    def __init__(self, config: KeycloakSettings) -> None:
        self.config = config
        self.issuer = config.issuer or config.realm_url
        self.audience = config.audience or config.client_id
        self.algorithms = list(config.algorithms)
        # Cleared on every JWKS fetch: a token of a withdrawn key is refused within `jwks_cache_ttl`.
        self.tokens = VerifiedTokens()
        self.jwks = JwksCache(
            f"{config.realm_url}/protocol/openid-connect/certs",
            ttl=config.jwks_cache_ttl,
            cooldown=config.jwks_refetch_cooldown,
            timeout=config.http_timeout,
            on_refresh=self.tokens.clear,
        )
        self._warmup: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.jwks.client = httpx.AsyncClient(timeout=self.config.http_timeout)
        # In the background: start-up must not wait for, nor fail because of, Keycloak.
        self._warmup = asyncio.create_task(self._warm())

    async def _warm(self) -> None:
        try:
            await self.jwks.refresh()
        except AuthUnavailableError:
            log.warning(
                "keycloak unreachable at start-up; protected routes answer 503 until its keys can be fetched",
                url=self.jwks.url,
            )

    async def close(self) -> None:
        if self._warmup is not None:
            self._warmup.cancel()
            await asyncio.gather(self._warmup, return_exceptions=True)
        if self.jwks.client is not None:
            await self.jwks.client.aclose()
            self.jwks.client = None

    async def check_keys(self) -> dict[str, Any]:
        """Readiness: the realm's signing keys are at hand (fetched now if none are), so tokens can be checked."""
        if not self.jwks.loaded:
            try:
                await self.jwks.refresh()  # at most one attempt per second while Keycloak is down
            except AuthError as exc:
                return {"status": "down", "error": str(exc)}
        return {"status": "up"}

    async def authenticate(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None
        if header.get("alg") not in self.algorithms:
            raise InvalidTokenError("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("token has no key id")
        key = await self.jwks.get(kid)
        claims = self._decode(token, key, header["alg"])
        if claims.get("typ", "Bearer") != "Bearer":
            raise InvalidTokenError("not an access token")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences if isinstance(audiences, list) else []
        if self.audience not in audiences and not (self.config.accept_azp and claims.get("azp") == self.audience):
            raise InvalidTokenError("token not issued for this service")
        roles, permissions = roles_from_claims(claims, self.config.client_id)
        subject = str(claims["sub"])
        return Principal(
            id=subject,
            username=str(claims.get("preferred_username") or subject),
            roles=roles,
            permissions=permissions,
            email=claims.get("email") if isinstance(claims.get("email"), str) else None,
            claims=claims,
        )

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self.issuer,
                leeway=self.config.leeway,
                # Keycloak access tokens carry no `nbf`; it is still checked when present.
                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidTokenError("token not yet valid") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("token issued by another realm") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("invalid token") from None
        return claims


def install_auth(app: FastAPI, settings: Settings) -> KeycloakBackend:
    """Check tokens of the configured realm; /docs logs in with PKCE; readiness reports the realm's keys."""
    config = settings.auth.keycloak
    backend = KeycloakBackend(config)
    app.state.auth_backend = backend
    _describe_realm(config)
    app.swagger_ui_init_oauth = {
        "clientId": config.client_id,
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "openid",
    }
    # Degraded, not failed, when the keys cannot be fetched: see src/routes/health.py.
    app.state.degraded_checks = {**getattr(app.state, "degraded_checks", {}), "auth": backend.check_keys}
    return backend
