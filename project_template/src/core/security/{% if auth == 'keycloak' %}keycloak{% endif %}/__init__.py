"""Keycloak mode: validate access tokens issued by a Keycloak realm, per request, without calling it.

- `keys`: the realm's signing keys (JWKS), cached, refetched once on rotation;
- `backend`: the token checks, the /docs schemes and `install_auth`;
- `admin`: python-keycloak for the calls that do go to Keycloak (token endpoint,
  admin API); imported on demand, never at start-up.
"""

from src.core.security.keycloak.backend import KeycloakBackend, bearer_token, install_auth, roles_from_claims
from src.core.security.keycloak.keys import JwksCache

__all__ = ["JwksCache", "KeycloakBackend", "bearer_token", "install_auth", "roles_from_claims"]
