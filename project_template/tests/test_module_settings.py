"""A module's own settings: its `modules.<name>:` section, checked against modules/<name>/settings.py at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from src.core.config import PROJECT_ROOT, ConfigError, load_settings
from src.core.module_loader import discover_modules
from src.core.module_settings import settings_of
from tests.test_module_loader import ROUTER, _fake_modules

SETTINGS = """
from pydantic import BaseModel, ConfigDict, Field
depends_on: tuple[str, ...] = ()
class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page_ttl: int = Field(default=30, ge=1)
    label: str = "alpha"
"""


@pytest.fixture
def alpha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _fake_modules(tmp_path, monkeypatch, {"alpha": ROUTER, "beta": ROUTER}, {"alpha": SETTINGS})


def alpha_settings() -> BaseModel:
    model: type[BaseModel] = __import__("modules.alpha.settings", fromlist=["Settings"]).Settings
    return settings_of(model)


def test_values_come_from_the_section_and_defaults(alpha: Path) -> None:
    loaded = discover_modules(FastAPI(), load_settings(modules={"alpha": {"page_ttl": "45"}}))
    assert {m.name: m.settings for m in loaded}["alpha"] == alpha_settings()
    assert alpha_settings().model_dump() == {"page_ttl": 45, "label": "alpha"}


def test_the_environment_overrides_a_value(alpha: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_MODULES__ALPHA__PAGE_TTL", "90")
    discover_modules(FastAPI(), load_settings())
    assert alpha_settings().model_dump() == {"page_ttl": 90, "label": "alpha"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"page_tl": 5}, "(config/test.yml): modules.alpha.page_tl: Extra inputs are not permitted"),
        (
            {"page_ttl": "soon"},
            (
                "(config/test.yml): modules.alpha.page_ttl: "
                "Input should be a valid integer, unable to parse string as an integer"
            ),
        ),
        ({"page_ttl": 0}, "(config/test.yml): modules.alpha.page_ttl: Input should be greater than or equal to 1"),
    ],
)
def test_a_typo_or_a_wrong_value_is_one_line_naming_module_key_and_file(
    alpha: Path, section: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        discover_modules(FastAPI(), load_settings(modules={"alpha": section}))
    assert str(raised.value) == f"invalid configuration {message}"


def test_a_bad_environment_value_names_the_variable(alpha: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_MODULES__ALPHA__PAGE_TTL", "soon")
    with pytest.raises(ConfigError, match=r"^invalid configuration \(APP_MODULES__ALPHA__PAGE_TTL\): modules.alpha"):
        discover_modules(FastAPI(), load_settings())


def test_a_section_for_no_module_or_a_module_without_settings_is_refused(alpha: Path) -> None:
    with pytest.raises(ConfigError, match=r"modules.alpah names no module \(known: alpha, beta\)"):
        discover_modules(FastAPI(), load_settings(modules={"alpah": {"page_ttl": 5}}))
    with pytest.raises(ConfigError, match=r"modules.beta is set, but module 'beta' has no settings"):
        discover_modules(FastAPI(), load_settings(modules={"beta": {"x": 1}}))


def test_the_server_stops_with_one_line() -> None:
    """`uvicorn src.app:app` with a bad `modules:` value: one line on stderr, exit status 1, no traceback."""
    env = {**os.environ, "CONFIG_ENV": "test", "APP_MODULES__NOMODULE__PAGE_TTL": "1"}
    result = subprocess.run(
        [sys.executable, "-c", "import src.app"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "configuration error: invalid configuration (APP_MODULES__NOMODULE__PAGE_TTL): modules.nomodule names no module"
    )
