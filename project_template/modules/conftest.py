"""Every module's tests share the project's fixtures.

pytest applies tests/conftest.py only under tests/, so its fixtures (`settings`,
`app`, `client`) and the postgres/redis markers are brought here, once, for all
of modules/*/tests/.
"""

from tests.conftest import app, client, pytest_collection_modifyitems, settings

__all__ = ["app", "client", "pytest_collection_modifyitems", "settings"]
