"""Settings: YAML files per environment, `${VAR}` substitution, environment overrides.

Precedence, highest first: explicit arguments, `DATABASE_URL` / `REDIS_URL`,
`APP_<SECTION>__<KEY>` variables, `.env`, then `config/<CONFIG_ENV>.yml`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "config"
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "please-change-me"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class ConfigError(RuntimeError):
    """The configuration cannot be loaded; the message says what to fix."""


class Section(BaseModel):
    # A typo in a YAML key is an error at start-up, not a silently ignored value.
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///./data/app.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout: float = Field(default=5.0, gt=0)
    pool_recycle: int = 1800
    connect_timeout: float = Field(default=5.0, gt=0)
    health_timeout: float = Field(default=1.0, gt=0)

    @field_validator("url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the URL forms platforms hand out (`postgres://...`), using the async drivers."""
        scheme, sep, rest = url.partition("://")
        drivers = {"postgres": "postgresql+asyncpg", "postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
        return f"{drivers[scheme]}{sep}{rest}" if sep and scheme in drivers else url


class CacheSettings(Section):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prepended to every key (`<prefix>:users:1`) so services can share one Redis.
    key_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$")
    default_ttl: int = Field(default=300, ge=1)
    # Per Redis command; a slower answer counts as "Redis down" and opens the breaker.
    socket_timeout: float = Field(default=0.25, gt=0)
    breaker_cooldown: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=50, ge=1)
    max_memory_items: int = Field(default=10_000, ge=1)


class LoggingSettings(Section):
    level: str = "INFO"
    format: Literal["auto", "json", "console"] = "auto"
    access_log: bool = True
    # JSON access lines are buffered and written at most this often (seconds).
    flush_interval: float = Field(default=0.5, gt=0, le=10)


class HttpServiceSettings(Section):
    base_url: str
    timeout: float | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class HttpClientSettings(Section):
    timeout: float = Field(default=10.0, gt=0)
    connect_timeout: float = Field(default=3.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    max_keepalive_connections: int = Field(default=20, ge=0)
    retries: int = Field(default=3, ge=0)
    # Exponential backoff with jitter between retries (seconds): first wait, longest wait.
    retry_backoff: float = Field(default=0.1, ge=0)
    retry_backoff_max: float = Field(default=2.0, ge=0)
    services: dict[str, HttpServiceSettings] = Field(default_factory=dict)


class KeycloakSettings(Section):
    server_url: str = "http://localhost:8080"
    realm: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    # Expected `aud`; default: client_id. Keycloak's default access tokens say `aud: account`
    # and name the requesting client in `azp`, hence accept_azp.
    audience: str | None = None
    accept_azp: bool = True
    # Expected `iss`; default: <server_url>/realms/<realm>. Set it when the API reaches
    # Keycloak by an internal URL but tokens carry the public one.
    issuer: str | None = None
    # Asymmetric algorithms only: HS* would let anyone holding the public key forge tokens.
    algorithms: list[Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]] = Field(
        default=["RS256"], min_length=1
    )
    leeway: int = Field(default=10, ge=0, le=300)
    jwks_cache_ttl: int = Field(default=3600, ge=1)
    jwks_refetch_cooldown: float = Field(default=10.0, ge=0)
    http_timeout: float = Field(default=3.0, gt=0)


class RbacSettings(Section):
    secret_key: SecretStr = SecretStr("change-me")
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    issuer: str = "app"
    audience: str = "app"
    access_token_ttl: int = Field(default=900, ge=30)
    refresh_token_ttl: int = Field(default=14 * 24 * 3600, ge=60)
    # Login throttling (docs/auth.md): failures are counted per (username, client address) and per
    # client address across usernames, so nobody elsewhere can lock a user out; locks start short and double.
    max_failed_logins: int = Field(default=5, ge=1)  # per username from one client
    max_failed_logins_per_client: int = Field(default=30, ge=1)  # any usernames from one client
    lockout_base_seconds: int = Field(default=10, ge=1)  # the first lock; each further failure doubles it
    lockout_seconds: int = Field(default=300, ge=1)  # the longest lock
    failure_window_seconds: int = Field(default=900, ge=1)  # counts start over after this long


class AuthSettings(Section):
    mode: Literal["keycloak", "rbac"]
    keycloak: KeycloakSettings = Field(default_factory=KeycloakSettings)
    rbac: RbacSettings = Field(default_factory=RbacSettings)


class MetricsSettings(Section):
    enabled: bool = True


class TracingSettings(Section):
    # Used only when the project was rendered with `with_tracing` (src/core/tracing.py).
    enabled: bool = False
    exporter: Literal["otlp", "console", "none"] = "otlp"
    # OTLP over HTTP (protobuf): the collector's traces URL.
    otlp_endpoint: str = "http://localhost:4318/v1/traces"
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    service_name: str | None = None  # default: project_name
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    # Requests to these paths make no spans (probes and scrapes would drown the traces).
    excluded_paths: list[str] = Field(default_factory=lambda: ["/health", "/health/live", "/health/ready", "/metrics"])


class DocsSettings(Section):
    # Where /docs and /redoc load Swagger UI and ReDoc from: `local` (this app, works offline;
    # the fastapi-offline package ships them) or `cdn` (FastAPI's default, needs the internet).
    assets: Literal["local", "cdn"] = "local"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APP_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    project_name: str
    description: str = ""
    version: str = "0.1.0"
    environment: Literal["development", "test", "production"] = "development"
    debug: bool = False
    api_prefix: str = "/api/v1"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    http: HttpClientSettings = Field(default_factory=HttpClientSettings)
    auth: AuthSettings
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    docs: DocsSettings = Field(default_factory=DocsSettings)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if self.debug:
            problems.append("debug must be false")
        if self.auth.mode == "rbac" and _is_placeholder(self.auth.rbac.secret_key):
            problems.append("auth.rbac.secret_key is a placeholder (set JWT_SECRET_KEY)")
        if self.auth.mode == "rbac" and len(self.auth.rbac.secret_key.get_secret_value()) < 32:
            problems.append("auth.rbac.secret_key must be at least 32 characters")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _environ()
        return (
            init_settings,
            _UrlOverrides(settings_cls, environ),
            env_settings,
            _Mapping(settings_cls, _app_prefixed(dotenv_values(PROJECT_ROOT / ".env"))),
            _YamlFile(settings_cls, environ),
        )


def _is_placeholder(secret: SecretStr) -> bool:
    value = secret.get_secret_value().strip().lower()
    return value in PLACEHOLDER_SECRETS or value.startswith("change-me")


def _environ() -> dict[str, str]:
    """The process environment, falling back to `.env` for unset variables."""
    file_values = {k: v for k, v in dotenv_values(PROJECT_ROOT / ".env").items() if v is not None}
    return {**file_values, **os.environ}


def _app_prefixed(values: dict[str, str | None]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or not key.startswith("APP_"):
            continue
        *path, leaf = key.removeprefix("APP_").lower().split("__")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def config_env(environ: dict[str, str] | None = None) -> str:
    """The configuration name: `CONFIG_ENV`, else `development`."""
    return (environ if environ is not None else _environ()).get("CONFIG_ENV", "development")


def substitute(value: Any, environ: dict[str, str], where: str = "") -> Any:
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


def load_yaml(name: str, environ: dict[str, str]) -> dict[str, Any]:
    path = CONFIG_DIR / f"{name}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yml"))
        raise ConfigError(f"CONFIG_ENV={name!r} but {path} does not exist (known: {', '.join(known)})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.relative_to(PROJECT_ROOT)} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    try:
        substituted: dict[str, Any] = substitute(data, environ)
    except ConfigError as exc:
        raise ConfigError(f"{path.relative_to(PROJECT_ROOT)}: {exc}") from None
    return substituted


class _Mapping(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class _YamlFile(_Mapping):
    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        super().__init__(settings_cls, load_yaml(config_env(environ), environ))


class _UrlOverrides(_Mapping):
    """`DATABASE_URL` and `REDIS_URL`, the names every platform sets, win over YAML."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        data: dict[str, Any] = {}
        if environ.get("DATABASE_URL"):
            data["database"] = {"url": environ["DATABASE_URL"]}
        if environ.get("REDIS_URL"):
            data["cache"] = {"redis_url": environ["REDIS_URL"]}
        super().__init__(settings_cls, data)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable line (a `ConfigError`)."""
    try:
        return Settings(**overrides)
    except ConfigError:
        raise
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise ConfigError(f"invalid configuration ({config_env()}): {problems}") from None
    except ValueError as exc:
        raise ConfigError(f"invalid configuration ({config_env()}): {exc}") from None


def _problem(error: ErrorDetails) -> str:
    """`cache.backnd: Extra inputs are not permitted`, without pydantic's input dump and help link."""
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@lru_cache
def get_settings() -> Settings:
    return load_settings()


def __getattr__(name: str) -> Any:
    # `from src.core.config import settings` works, but loads lazily: importing
    # this module never reads files, so tests can set CONFIG_ENV first.
    if name == "settings":
        return get_settings()
    raise AttributeError(name)
