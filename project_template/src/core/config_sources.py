"""Where settings come from, highest precedence first.

1. arguments to `load_settings(...)` / `Settings(...)`;
2. `DATABASE_URL` and `REDIS_URL`, the names every platform sets (environment, else `.env`);
3. `APP_<SECTION>__<KEY>` environment variables (`APP_CACHE__BACKEND=redis`);
4. the same `APP_*` variables in `.env`;
5. `config/<CONFIG_ENV>.yml` (default: development), its `${VAR}` and `${VAR:-default}`
   replaced from the environment, else `.env`.

pydantic-settings reads each; this module adds the substitution and messages naming what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    YamlConfigSettingsSource,
)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class ConfigError(RuntimeError):
    """The configuration cannot be loaded; the message says what to fix."""


def read_environ(dotenv: Path) -> dict[str, str]:
    """The process environment, falling back to `dotenv` for unset variables."""
    file_values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None}
    return {**file_values, **os.environ}


def config_env(environ: Mapping[str, str]) -> str:
    """The configuration name: `CONFIG_ENV`, else `development`."""
    return environ.get("CONFIG_ENV", "development")


def substitute(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a YAML tree."""
    if isinstance(value, dict):
        return {k: substitute(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        # As in the shell, `:-` treats an empty variable like an unset one.
        name, default = match.group(1), match.group(2)
        if environ.get(name):
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (needed by '{where}')")

    return _VAR.sub(replace, value)


class YamlWithVariables(YamlConfigSettingsSource):
    """`config/<CONFIG_ENV>.yml` as pydantic-settings reads it, with the variables replaced."""

    def __init__(
        self, settings_cls: type[BaseSettings], *, config_dir: Path, root: Path, environ: Mapping[str, str]
    ) -> None:
        name = config_env(environ)
        path = config_dir / f"{name}.yml"
        if not path.is_file():
            known = sorted(p.stem for p in config_dir.glob("*.yml"))
            raise ConfigError(f"CONFIG_ENV={name!r} but {path} does not exist (known: {', '.join(known)})")
        self.environ = environ
        self.shown = path.relative_to(root) if path.is_relative_to(root) else path
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(path)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.shown} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.shown} must hold a mapping at the top level")
        try:
            substituted: dict[str, Any] = substitute(data, self.environ)
        except ConfigError as exc:
            raise ConfigError(f"{self.shown}: {exc}") from None
        return substituted


def url_overrides(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> InitSettingsSource:
    """`DATABASE_URL` and `REDIS_URL` for `database.url` and `cache.redis_url`."""
    data: dict[str, Any] = {}
    if environ.get("DATABASE_URL"):
        data["database"] = {"url": environ["DATABASE_URL"]}
    if environ.get("REDIS_URL"):
        data["cache"] = {"redis_url": environ["REDIS_URL"]}
    return InitSettingsSource(settings_cls, init_kwargs=data)


def settings_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    *,
    root: Path,
    config_dir: Path,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of the module docstring, in its order; `.env` is read from `root`."""
    environ = read_environ(root / ".env")
    return (
        init_settings,
        url_overrides(settings_cls, environ),
        env_settings,
        # Only `APP_*` names of settings: `.env` also holds CONFIG_ENV, DATABASE_URL and the variables of YAML.
        DotEnvSettingsSource(settings_cls, env_file=root / ".env", dotenv_filtering="only_existing"),
        YamlWithVariables(settings_cls, config_dir=config_dir, root=root, environ=environ),
    )
