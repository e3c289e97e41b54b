"""Logging in on a database the migrations never ran on: a 503 saying to run them, not "database unavailable"."""

from __future__ import annotations

from pathlib import Path

import httpx

from src.app import create_app
from src.core.config import Settings


async def test_login_before_the_migrations_says_to_run_them(settings: Settings, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'never_migrated.db'}"  # the database is up, its tables are not
    app = create_app(settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/api/v1/auth/login", data={"username": "admin", "password": "secret"})
    assert response.status_code == 503
    assert response.json() == {"detail": "database not migrated: run scripts/run_migrations.py --all"}
