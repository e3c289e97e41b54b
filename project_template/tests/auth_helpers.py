"""Tokens for tests in either auth mode, and a Keycloak-shaped realm served locally.

    from tests.auth_helpers import auth_headers
    response = await client.delete(url, headers=auth_headers(roles=["admin"]))

Loaded as a pytest plugin (`-p tests.auth_helpers` in pyproject.toml): in
Keycloak mode it starts `FakeRealm` on 127.0.0.1 before any test and points
`KEYCLOAK_SERVER_URL` at it, so every app the tests build validates tokens
against a real HTTP JWKS endpoint, and no test ever needs a Keycloak server.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from src.core.config import Settings, load_settings

TEST_CLIENT_SECRET = "test-client-secret"


class FakeRealm:
    """A Keycloak realm as seen from outside: discovery, JWKS and token endpoints, RSA keys it can rotate."""

    def __init__(self, realm: str, client_id: str, *, client_secret: str = TEST_CLIENT_SECRET) -> None:
        self.realm = realm
        self.client_id = client_id
        self.client_secret = client_secret
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.signing_kid = self.add_key()
        self.users: dict[str, dict[str, Any]] = {}
        self.jwks_requests = 0
        self.available = True
        self._server: ThreadingHTTPServer | None = None

    # -- keys -------------------------------------------------------------------------
    def add_key(self) -> str:
        kid = uuid.uuid4().hex[:16]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def rotate(self, *, keep_old: bool = False) -> str:
        """Sign with a new key from now on (Keycloak's key rotation); drop the old ones unless `keep_old`."""
        kid = self.add_key()
        if not keep_old:
            self.keys = {kid: self.keys[kid]}
        self.signing_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        entries = []
        for kid, key in self.keys.items():
            entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            entries.append({**entry, "kid": kid, "use": "sig", "alg": "RS256"})
        # Keycloak also publishes an encryption key; a validator must not pick it for signatures.
        enc = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(next(iter(self.keys.values())).public_key()))
        entries.append({**enc, "kid": "enc-key", "use": "enc", "alg": "RSA-OAEP"})
        return {"keys": entries}

    # -- tokens -----------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"{self.server_url}/realms/{self.realm}"

    def claims(
        self,
        *,
        subject: str | None = None,
        username: str = "alice",
        realm_roles: Iterable[str] = (),
        client_roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        ttl: int = 300,
    ) -> dict[str, Any]:
        """Claims shaped like a Keycloak access token issued to this realm's client."""
        now = int(time.time())
        return {
            "exp": now + ttl,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": [self.client_id, "account"],
            "sub": subject or str(uuid.uuid5(uuid.NAMESPACE_URL, username)),
            "typ": "Bearer",
            "azp": self.client_id,
            "preferred_username": username,
            "email": f"{username}@example.com",
            "realm_access": {"roles": ["default-roles-" + self.realm, *realm_roles]},
            "resource_access": {self.client_id: {"roles": list(client_roles)}, "account": {"roles": ["view-profile"]}},
            "scope": " ".join(["openid", "profile", "email", *scopes]),
        }

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, headers: dict[str, Any] | None = None) -> str:
        kid = kid or self.signing_kid
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid, **(headers or {})})

    def token(self, **claims: Any) -> str:
        return self.sign(self.claims(**claims))

    # -- HTTP -------------------------------------------------------------------------
    @property
    def server_url(self) -> str:
        assert self._server is not None, "FakeRealm.start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeRealm:
        realm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def reply(self, status: int, body: dict[str, Any] | list[Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                base = f"/realms/{realm.realm}"
                if not realm.available:
                    self.reply(503, {"error": "unavailable"})
                elif self.path == f"{base}/.well-known/openid-configuration":
                    self.reply(200, realm.discovery())
                elif self.path == f"{base}/protocol/openid-connect/certs":
                    realm.jwks_requests += 1
                    self.reply(200, realm.jwks())
                elif self.path.split("?")[0] == f"/admin/realms/{realm.realm}/users":
                    if realm.admin_authorized(self.headers.get("Authorization", "")):
                        self.reply(200, [{"id": name, "username": name} for name in sorted(realm.users)])
                    else:
                        self.reply(401, {"error": "HTTP 401 Unauthorized"})
                else:
                    self.reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                if self.path != f"/realms/{realm.realm}/protocol/openid-connect/token":
                    self.reply(404, {"error": "not found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = realm.token_endpoint(form)
                self.reply(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="fake-keycloak", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        base = f"{self.issuer}/protocol/openid-connect"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/certs",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def admin_authorized(self, header: str) -> bool:
        """The admin API accepts this realm's tokens only (enough to exercise python-keycloak's admin client)."""
        scheme, _, token = header.partition(" ")
        try:
            key = self.keys[str(jwt.get_unverified_header(token).get("kid"))]
            jwt.decode(token, key.public_key(), algorithms=["RS256"], options={"verify_aud": False})
        except (jwt.PyJWTError, KeyError):
            return False
        return scheme.lower() == "bearer"

    def add_user(self, username: str, password: str, *, realm_roles: Iterable[str] = ()) -> None:
        self.users[username] = {"password": password, "realm_roles": list(realm_roles)}

    def token_endpoint(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type")
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        if grant == "client_credentials":
            if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
                return 401, {"error": "unauthorized_client"}
            claims = self.claims(username=f"service-account-{self.client_id}", realm_roles=["service"])
        elif grant == "password":
            user = self.users.get(form.get("username", ""))
            if user is None or not secrets.compare_digest(user["password"], form.get("password", "")):
                return 401, {"error": "invalid_grant", "error_description": "Invalid user credentials"}
            claims = self.claims(username=form["username"], realm_roles=user["realm_roles"])
        else:
            return 400, {"error": "unsupported_grant_type"}
        return 200, {
            "access_token": self.sign(claims),
            "expires_in": 300,
            "token_type": "Bearer",
            "scope": claims["scope"],
        }


REALM: FakeRealm | None = None


def _settings() -> Settings:
    # This plugin loads before conftest.py, which sets the same default.
    os.environ.setdefault("CONFIG_ENV", "test")
    return load_settings()


def current_realm() -> FakeRealm:
    """The realm the tests' apps trust (Keycloak mode only)."""
    assert REALM is not None, "the Keycloak test realm runs only when auth.mode is keycloak"
    return REALM


def pytest_configure(config: pytest.Config) -> None:
    global REALM
    settings = _settings()
    if settings.auth.mode == "keycloak" and REALM is None:
        REALM = FakeRealm(settings.auth.keycloak.realm, settings.auth.keycloak.client_id).start()
        os.environ["KEYCLOAK_SERVER_URL"] = REALM.server_url


def pytest_unconfigure(config: pytest.Config) -> None:
    if REALM is not None:
        REALM.stop()


def valid_claims(*, roles: Iterable[str] = (), username: str = "alice") -> dict[str, Any]:
    """The claims of a token the app accepts; tests alter them to forge bad ones."""
    settings = _settings()
    if settings.auth.mode == "keycloak":
        return current_realm().claims(username=username, realm_roles=roles)
    return dict(jwt.decode(access_token(roles=roles, username=username), options={"verify_signature": False}))


def sign(claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
    """Sign `claims` the way the configured issuer does (realm key, or the app's secret)."""
    settings = _settings()
    if settings.auth.mode == "keycloak":
        return current_realm().sign(claims, headers=headers)
    rbac = settings.auth.rbac
    return jwt.encode(claims, rbac.secret_key.get_secret_value(), algorithm=rbac.algorithm, headers=headers)


def access_token(
    *,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
    username: str = "alice",
    subject: str | None = None,
) -> str:
    """A valid access token for the configured mode, holding `roles` and `permissions`."""
    settings = _settings()
    if settings.auth.mode == "keycloak":
        # Permissions travel as OAuth scopes, so `roles` stays exactly what was asked for.
        return current_realm().token(subject=subject, username=username, realm_roles=roles, scopes=permissions)
    rbac = importlib.import_module("src.core.security.rbac")
    token: str = rbac.create_access_token(
        config=settings.auth.rbac,
        subject=subject or f"test-{username}",
        username=username,
        roles=roles,
        permissions=permissions,
    )
    return token


def auth_headers(
    *,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
    username: str = "alice",
    subject: str | None = None,
) -> dict[str, str]:
    """`{"Authorization": "Bearer <token>"}` that the app accepts, whatever `auth.mode` is."""
    token = access_token(roles=roles, permissions=permissions, username=username, subject=subject)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def fake_realm() -> Iterator[FakeRealm]:
    """The session's realm (Keycloak mode), with its keys restored after the test."""
    realm = current_realm()
    keys, kid, users = dict(realm.keys), realm.signing_kid, dict(realm.users)
    yield realm
    realm.keys, realm.signing_kid, realm.users, realm.available = keys, kid, users, True
