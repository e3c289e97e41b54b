from __future__ import annotations

from pathlib import Path

import pytest

from src.core import config
from src.core.config import ConfigError, load_settings


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(config, "CONFIG_DIR", tmp_path)
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    for name in ("DATABASE_URL", "REDIS_URL", "CONFIG_ENV"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def write(config_dir: Path, name: str, body: str) -> None:
    (config_dir / f"{name}.yml").write_text(body, encoding="utf-8")


BASE = "project_name: demo\n"  # `auth` defaults to the mode this project was generated for


def test_yaml_file_is_read(config_dir: Path) -> None:
    write(config_dir, "development", BASE + "cache:\n  default_ttl: 42\n")
    settings = load_settings()
    assert settings.project_name == "demo"
    assert settings.cache.default_ttl == 42


def test_config_env_switches_file(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_dir, "development", BASE + "debug: true\n")
    write(config_dir, "staging", BASE + "debug: false\nenvironment: test\n")
    monkeypatch.setenv("CONFIG_ENV", "staging")
    assert load_settings().debug is False


def test_unknown_config_env_names_the_file(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_dir, "development", BASE)
    monkeypatch.setenv("CONFIG_ENV", "nope")
    with pytest.raises(ConfigError, match=r"nope\.yml does not exist \(known: development\)"):
        load_settings()


def test_variable_substitution(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_dir, "development", BASE + "database:\n  url: postgresql+asyncpg://app:${DB_PASSWORD}@db/app\n")
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    assert load_settings().database.url == "postgresql+asyncpg://app:s3cret@db/app"


def test_variable_default(config_dir: Path) -> None:
    write(config_dir, "development", BASE + "cache:\n  redis_url: ${NOT_SET_ANYWHERE:-redis://fallback:6379/1}\n")
    assert load_settings().cache.redis_url == "redis://fallback:6379/1"


def test_missing_variable_is_named(config_dir: Path) -> None:
    write(config_dir, "development", BASE + "database:\n  url: ${DB_URL_THAT_IS_MISSING}\n")
    with pytest.raises(ConfigError, match=r"DB_URL_THAT_IS_MISSING is not set \(needed by 'database\.url'\)"):
        load_settings()


def test_database_and_redis_url_override_yaml(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_dir, "development", BASE + "database:\n  url: sqlite+aiosqlite:///x.db\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/d")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    settings = load_settings()
    assert settings.database.url == "postgresql+asyncpg://u@h/d"
    assert settings.cache.redis_url == "redis://cache:6379/2"


def test_nested_environment_override(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_dir, "development", BASE)
    monkeypatch.setenv("APP_CACHE__BACKEND", "redis")
    assert load_settings().cache.backend == "redis"


def test_dotenv_file_is_read(config_dir: Path) -> None:
    write(config_dir, "development", BASE + "database:\n  url: ${FROM_DOTENV}\n")
    (config_dir / ".env").write_text("FROM_DOTENV=sqlite+aiosqlite:///dotenv.db\nAPP_DEBUG=true\n")
    settings = load_settings()
    assert settings.database.url == "sqlite+aiosqlite:///dotenv.db"
    assert settings.debug is True


def test_precedence_arguments_urls_environment_dotenv_yaml(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_values = (
        "cache:\n  default_ttl: 1\n  key_prefix: yaml\n  max_connections: 7\ndatabase:\n  url: sqlite:///y.db\n"
    )
    write(config_dir, "development", BASE + yaml_values)
    dotenv = "APP_CACHE__DEFAULT_TTL=2\nAPP_CACHE__KEY_PREFIX=dotenv\nDATABASE_URL=sqlite:///url.db\nUNRELATED=x\n"
    (config_dir / ".env").write_text(dotenv)
    monkeypatch.setenv("APP_CACHE__DEFAULT_TTL", "3")
    monkeypatch.setenv("APP_DATABASE__URL", "sqlite:///app.db")
    settings = load_settings()
    assert settings.cache.default_ttl == 3  # the environment over .env over YAML
    assert settings.cache.key_prefix == "dotenv"  # .env over YAML
    assert settings.cache.max_connections == 7  # YAML where nothing else says
    assert settings.database.url == "sqlite+aiosqlite:///url.db"  # DATABASE_URL (here from .env) over APP_*
    chosen = load_settings(cache={"default_ttl": 4}, database={"url": "sqlite:///arg.db"})
    assert (chosen.cache.default_ttl, chosen.database.url) == (4, "sqlite+aiosqlite:///arg.db")


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_unknown_environment_key_is_rejected(config_dir: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    write(config_dir, "development", BASE)
    if where == ".env":
        (config_dir / ".env").write_text("APP_CACHE__BACKND=redis\n")
    else:
        monkeypatch.setenv("APP_CACHE__BACKND", "redis")
    with pytest.raises(ConfigError, match="backnd"):
        load_settings()


def test_unknown_key_is_rejected(config_dir: Path) -> None:
    write(config_dir, "development", BASE + "cache:\n  backnd: redis\n")
    with pytest.raises(ConfigError, match="backnd"):
        load_settings()


def test_production_refuses_debug(config_dir: Path) -> None:
    write(config_dir, "development", BASE + "environment: production\ndebug: true\n")
    with pytest.raises(ConfigError, match="debug must be false"):
        load_settings()


def test_shipped_files_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file in config/ loads when the variables it needs are set."""
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/d")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/0")
    monkeypatch.setenv("KEYCLOAK_SERVER_URL", "https://sso.example.com")
    monkeypatch.setenv("JWT_SECRET_KEY", "Kq3v9ZmT2xWb7LpR4sYd8NhC6fJg1AeU5tQz0VkX")
    for path in sorted(config.CONFIG_DIR.glob("*.yml")):
        monkeypatch.setenv("CONFIG_ENV", path.stem)
        assert load_settings().environment in {"development", "test", "production"}


def test_shipped_production_needs_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_ENV", "production")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(config, "PROJECT_ROOT", config.CONFIG_DIR)  # no .env
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_platform_database_urls_get_the_async_driver(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    write(config_dir, "development", BASE)
    monkeypatch.setenv("DATABASE_URL", given)
    assert load_settings().database.url == used


def test_yaml_syntax_error_names_the_file(config_dir: Path) -> None:
    write(config_dir, "development", BASE + "cache:\n  backend: memory\n   bad: [indent\n")
    with pytest.raises(ConfigError, match=r"development\.yml is not valid YAML"):
        load_settings()
