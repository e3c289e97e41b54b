"""Calls that do go to Keycloak, through python-keycloak: token endpoint and admin API.

Imported on demand (`from src.core.security.keycloak.admin import admin_client`),
not at start-up: requests never need it, tokens are checked locally.
"""

from __future__ import annotations

from keycloak import KeycloakAdmin, KeycloakOpenID, KeycloakOpenIDConnection

from src.core.auth_settings import KeycloakSettings


def _secret(config: KeycloakSettings) -> str:
    secret = config.client_secret.get_secret_value()
    if not secret:
        raise RuntimeError("auth.keycloak.client_secret is empty: set KEYCLOAK_CLIENT_SECRET")
    return secret


def openid_client(config: KeycloakSettings) -> KeycloakOpenID:
    """A python-keycloak client of this service's realm and client (token endpoint, userinfo, logout)."""
    return KeycloakOpenID(
        server_url=config.server_url,
        realm_name=config.realm,
        client_id=config.client_id,
        client_secret_key=config.client_secret.get_secret_value() or None,
        timeout=int(max(config.http_timeout, 1)),
    )


def admin_client(config: KeycloakSettings) -> KeycloakAdmin:
    """python-keycloak's admin API, acting as this client's service account.

    Give the service account the realm-management roles it needs (e.g. `view-users`).
    """
    connection = KeycloakOpenIDConnection(
        server_url=config.server_url,
        realm_name=config.realm,
        user_realm_name=config.realm,
        client_id=config.client_id,
        client_secret_key=_secret(config),
        timeout=int(max(config.http_timeout, 1)),
    )
    return KeycloakAdmin(connection=connection)


async def service_account_token(config: KeycloakSettings) -> str:
    """An access token for this service itself (client credentials grant; needs `client_secret`)."""
    _secret(config)
    response = await openid_client(config).a_token(grant_type="client_credentials", username=None, password=None)
    return str(response["access_token"])
