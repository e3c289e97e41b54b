"""Settings: one typed object, built once from `config/<CONFIG_ENV>.yml` and the environment.

Where the values come from, and which wins: `src/core/config_sources.py`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from src.core.auth_settings import AuthSettings
from src.core.config_sources import ConfigError as ConfigError  # raised by load_settings, caught by callers
from src.core.config_sources import config_env, read_environ, settings_sources

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "config"


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
    # Longest a statement may run (None: no limit); a database that stops answering (frozen,
    # partitioned) fails the request after this long, as a 503 (docs/hardening.md). Migrations run without it.
    statement_timeout: float | None = Field(default=30.0, gt=0)
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


class MetricsSettings(Section):
    # Serves `/metrics` on the API's port: keep it off the public ingress (docs/observability.md).
    enabled: bool = True


class DocsSettings(Section):
    # `/docs`, `/redoc` and `/openapi.json`; production turns them off (docs/hardening.md).
    enabled: bool = True
    # Where the pages load Swagger UI and ReDoc from: `local` (this app, works offline;
    # the fastapi-offline package ships them) or `cdn` (FastAPI's default, needs the internet).
    assets: Literal["local", "cdn"] = "local"


class LimitsSettings(Section):
    # Request size limits (src/middleware/guard.py); an upload endpoint raises its own with `body_limit(...)`.
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)


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


class ModulesSettings(BaseModel):
    """`modules:` in config: which modules are switched off, and each module's own section.

    `modules.<name>: {...}` is checked against `modules/<name>/settings.py` by the module
    loader (core knows no module), hence extra keys are allowed here and only here.
    """

    model_config = ConfigDict(extra="allow")

    # Not mounted (routes, tasks, event handlers, health); their migrations stay known (docs/module-settings.md).
    disabled: list[str] = Field(default_factory=list)

    def sections(self) -> dict[str, Any]:
        """Every `modules.<name>` section, by module name."""
        return dict(self.model_extra or {})


class JobsSettings(Section):
    # Background jobs and events (src/core/jobs/, docs/events-and-jobs.md).
    # memory: in this process, nothing to install (development, tests); redis or rabbitmq: a worker runs them.
    broker: Literal["memory", "redis", "rabbitmq"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Names the Redis streams / RabbitMQ queues (`<prefix>:<module>`), so services can share a server.
    queue_prefix: str = Field(default="jobs", pattern=r"^[A-Za-z0-9_.-]+$")
    # Attempts of a task or handler before it goes to the dead letters, with exponential backoff between them.
    max_attempts: int = Field(default=5, ge=1)
    retry_backoff: float = Field(default=0.5, ge=0)
    retry_backoff_max: float = Field(default=30.0, ge=0)
    # Redis: a message a worker took and never acknowledged (it died) goes to another worker after this long.
    # Keep it longer than the slowest task with all its retries.
    redeliver_after: float = Field(default=300.0, gt=0)
    # The outbox relay: runs in the API and in workers (several at once is safe); off in tests, which drive it.
    relay: bool = True
    relay_interval: float = Field(default=0.5, gt=0)
    relay_batch: int = Field(default=100, ge=1)
    # The worker's /health/live, /health/ready and /metrics (0: none).
    worker_port: int = Field(default=8001, ge=0, le=65535)


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
    auth: AuthSettings = Field(default_factory=AuthSettings)  # the mode this project was generated for
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    docs: DocsSettings = Field(default_factory=DocsSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    modules: ModulesSettings = Field(default_factory=ModulesSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = ["debug must be false"] if self.debug else []
        problems += self.auth.production_problems()
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
        return settings_sources(settings_cls, init_settings, env_settings, root=PROJECT_ROOT, config_dir=CONFIG_DIR)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable line (a `ConfigError`)."""
    try:
        return Settings(**overrides)
    except ConfigError:
        raise
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise ConfigError(f"invalid configuration ({_config_name()}): {problems}") from None
    except ValueError as exc:
        raise ConfigError(f"invalid configuration ({_config_name()}): {exc}") from None


def _config_name() -> str:
    return config_env(read_environ(PROJECT_ROOT / ".env"))


def _problem(error: ErrorDetails) -> str:
    """`cache.backnd: Extra inputs are not permitted`, without pydantic's input dump and help link."""
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@lru_cache
def get_settings() -> Settings:
    return load_settings()
