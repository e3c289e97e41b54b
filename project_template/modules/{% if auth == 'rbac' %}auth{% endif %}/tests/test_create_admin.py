"""scripts/create_admin.py: the first administrator, from an empty database to a working login."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from types import ModuleType

import httpx
import pytest

from src.core.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "create_admin.py"
BOOTSTRAP_PASSWORD = "bootstrap-secret"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("create_admin_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def login(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", data={"username": "admin", "password": password})


@pytest.mark.commits  # the script writes from another process
async def test_bootstrap_admin_then_manage_users(client: httpx.AsyncClient) -> None:
    env = {**os.environ, "CONFIG_ENV": "test", "ADMIN_PASSWORD": BOOTSTRAP_PASSWORD}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--username",
        "Admin",
        "--email",
        "admin@example.com",
        env=env,
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):  # never hangs
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "created administrator 'admin'" in stdout.decode()

    response = await login(client, BOOTSTRAP_PASSWORD)
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=headers)).json()["roles"] == ["admin"]
    assert (await client.get("/api/v1/auth/users", headers=headers)).status_code == 200

    script = load_script()
    assert await script.create_admin("admin", None, "another-secret", reset=False) == 1
    assert (await login(client, "another-secret")).status_code == 401, "an existing user is left alone"
    assert await script.create_admin("admin", None, "another-secret", reset=True) == 0
    assert (await login(client, "another-secret")).status_code == 200


def test_password_comes_from_the_environment_or_a_prompt_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script()
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    with pytest.raises(SystemExit, match="ADMIN_PASSWORD"):
        script.main(["--username", "admin"])  # not a terminal: no prompt possible
    monkeypatch.setenv("ADMIN_PASSWORD", "short")
    with pytest.raises(SystemExit) as weak:
        script.main(["--username", "admin"])
    assert weak.value.code == 2
    assert "password" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--help"])
    assert "--password" not in capsys.readouterr().out
