"""Forged, stale and malformed tokens: each is refused, in whichever auth mode the project uses.

A valid token without the role gets 403; everything else gets 401 with a
`WWW-Authenticate: Bearer` challenge, never a 500 and never a 200. Attacks that
only one mode can meet (key ids, algorithm confusion) are in that mode's tests.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from src.core.config import Settings
from src.core.security import CurrentUser, Principal, install_auth, requires_role
from tests.auth_helpers import access_token, sign, valid_claims


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unsegment(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return decoded


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return unsegment(header), unsegment(payload), signature


@pytest.fixture
async def probe(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A tiny app behind the real auth stack: `/me` needs a user, `/admin` the admin role."""
    app = FastAPI()
    backend = install_auth(app, settings)

    @app.get("/api/v1/probe/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"id": user.id, "roles": sorted(user.roles)}

    @app.get("/api/v1/probe/admin", dependencies=[Depends(requires_role("admin"))])
    async def admin() -> dict[str, str]:
        return {"ok": "admin"}

    await backend.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client
    finally:
        await backend.close()


def now() -> int:
    return int(time.time())


def alg_none() -> str:
    header, claims, _ = split(access_token(roles=["admin"]))
    return f"{segment({**header, 'alg': 'none'})}.{segment(claims)}."


def altered(**changes: Any) -> Callable[[], str]:
    def build() -> str:
        claims = valid_claims(roles=["admin"])
        for key, value in changes.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value(claims) if callable(value) else value
        return sign(claims)

    return build


def tampered() -> str:
    header, claims, signature = split(access_token(roles=[]))
    claims["sub"] = "someone-else"
    return f"{segment(header)}.{segment(claims)}.{signature}"


def stripped() -> str:
    return access_token(roles=["admin"]).rsplit(".", 1)[0] + "."


def wrong_audience(claims: dict[str, Any]) -> Any:
    return ["some-other-api"] if isinstance(claims["aud"], list) else "some-other-api"


FORGERIES: list[Any] = [
    pytest.param(alg_none, id="alg-none"),
    pytest.param(altered(exp=lambda c: now() - 3600, iat=lambda c: now() - 7200), id="expired"),
    pytest.param(altered(nbf=lambda c: now() + 3600), id="nbf-in-the-future"),
    pytest.param(altered(iat=lambda c: now() + 3600), id="iat-in-the-future"),
    pytest.param(altered(iss="https://evil.example.com/realms/x"), id="wrong-iss"),
    pytest.param(altered(aud=wrong_audience, azp="some-other-client"), id="wrong-aud"),
    pytest.param(altered(exp=None), id="no-exp"),
    pytest.param(altered(iat=None), id="no-iat"),
    pytest.param(altered(sub=None), id="no-sub"),
    pytest.param(altered(typ="refresh"), id="not-an-access-token"),
    pytest.param(tampered, id="payload-tampered-after-signing"),
    pytest.param(stripped, id="signature-stripped"),
    pytest.param(lambda: "not-a-jwt", id="garbage"),
    pytest.param(lambda: "e30.e30.e30", id="empty-json-segments"),
    pytest.param(lambda: "a.b.c.d.e", id="five-segments"),
    pytest.param(lambda: "x" * 20_000, id="oversized"),
]


@pytest.mark.parametrize("forge", FORGERIES)
async def test_forged_token_is_refused(probe: httpx.AsyncClient, forge: Callable[[], str]) -> None:
    token = forge()
    for path in ("/api/v1/probe/me", "/api/v1/probe/admin"):
        response = await probe.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param("Bearer", None, id="bearer-without-token"),
        pytest.param("Basic YWRtaW46YWRtaW4=", None, id="basic-scheme"),
        pytest.param("Bearer " + "é" * 10, "bearer token is not ASCII", id="non-ascii"),
        pytest.param("Bearer a" + "\t" * 3, None, id="control-chars"),
    ],
)
async def test_malformed_authorization_header_is_refused(
    probe: httpx.AsyncClient, header: str, reason: str | None
) -> None:
    response = await probe.get("/api/v1/probe/me", headers=[(b"authorization", header.encode("utf-8"))])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if reason is not None:
        assert response.json()["detail"] == reason


def padded_token(size: int) -> str:
    """A genuine admin token of about `size` bytes (a large claim), signed as the app expects."""
    claims = valid_claims(roles=["admin"])
    unpadded = len(sign({**claims, "padding": ""}))
    return sign({**claims, "padding": "p" * ((size - unpadded) * 3 // 4)})  # base64: 4 characters per 3 bytes


async def test_a_genuine_token_over_16_kib_is_refused_unparsed(probe: httpx.AsyncClient) -> None:
    just_under = padded_token(16 * 1024 - 100)
    assert (
        await probe.get("/api/v1/probe/admin", headers={"Authorization": f"Bearer {just_under}"})
    ).status_code == 200
    oversized = padded_token(16 * 1024 + 100)
    response = await probe.get("/api/v1/probe/admin", headers={"Authorization": f"Bearer {oversized}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "bearer token too large"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_missing_roles_claim_is_forbidden_not_an_error(probe: httpx.AsyncClient) -> None:
    claims = valid_claims(roles=["admin"])
    for key in ("realm_access", "resource_access", "roles", "permissions"):
        claims.pop(key, None)
    headers = {"Authorization": f"Bearer {sign(claims)}"}
    me = await probe.get("/api/v1/probe/me", headers=headers)
    assert me.status_code == 200
    assert "admin" not in me.json()["roles"]
    assert (await probe.get("/api/v1/probe/admin", headers=headers)).status_code == 403


async def test_roles_of_the_wrong_shape_grant_nothing(probe: httpx.AsyncClient) -> None:
    claims = valid_claims()
    claims.update(realm_access={"roles": "admin"}, roles="admin", resource_access=["admin"])
    response = await probe.get("/api/v1/probe/admin", headers={"Authorization": f"Bearer {sign(claims)}"})
    assert response.status_code == 403


async def test_valid_token_with_role_passes(probe: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {access_token(roles=['admin'])}"}
    assert (await probe.get("/api/v1/probe/admin", headers=headers)).json() == {"ok": "admin"}


def test_principal_is_what_the_routes_see() -> None:
    principal = Principal(id="1", username="a", roles=frozenset({"admin"}))
    assert principal.has_role("admin", "other")
    assert not principal.has_permissions("x:write")
