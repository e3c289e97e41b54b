"""Every module's tests share the project's fixtures.

pytest applies tests/conftest.py only under tests/, so its fixtures (`settings`,
`schema`, `app`, `client`, `sign_in`) and the postgres/redis markers are brought
here, once, for all of modules/*/tests/. A module's own conftest.py holds its factories.
"""

from tests.conftest import app, client, pytest_collection_modifyitems, schema, settings, sign_in

__all__ = ["app", "client", "pytest_collection_modifyitems", "schema", "settings", "sign_in"]
