"""Each module's own settings: a pydantic model in `modules/<name>/settings.py`, values in config.

The values come from the `modules.<name>:` section of the same `config/<CONFIG_ENV>.yml`
(with its `${VAR}` substitution) and from `APP_MODULES__<NAME>__<KEY>` variables, through
the sources of `src/core/config_sources.py`. The module loader checks every section at
start-up (`check_section`); a module reads its own with `settings_of(Settings)`.
Core never imports a module: the loader hands the model over.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from src.core.config import PROJECT_ROOT, ConfigError, Settings, get_settings
from src.core.config_sources import config_env, read_environ

M = TypeVar("M", bound=BaseModel)

# The values the latest app (or the first `settings_of` without an app) validated, by module name.
_current: dict[str, BaseModel] = {}


def module_of(model: type[BaseModel]) -> str:
    """`modules.orders.settings.Settings` -> `orders`."""
    parts = model.__module__.split(".")
    if len(parts) < 3 or parts[0] != "modules":
        raise TypeError(f"{model.__qualname__} is not a module's settings (modules/<name>/settings.py)")
    return parts[1]


def _origin(module: str, key: str) -> str:
    """Where a bad value most likely came from: its environment variable if set, else the YAML file."""
    variable = f"APP_MODULES__{module}__{key}".upper()
    if key and variable in {name.upper() for name in read_environ(PROJECT_ROOT / ".env")}:
        return variable
    return f"config/{config_env(read_environ(PROJECT_ROOT / '.env'))}.yml"


def check_section(module: str, model: type[M] | None, settings: Settings) -> M | None:
    """Validate `modules.<module>` against the module's model; a bad key or value is one `ConfigError` line."""
    section: Any = settings.modules.sections().get(module, {})
    if model is not None:
        return validate_section(module, model, settings)
    if section:
        raise ConfigError(
            f"invalid configuration ({_origin(module, '')}): modules.{module} is set, "
            f"but module '{module}' has no settings (modules/{module}/settings.py)"
        )
    return None


def validate_section(module: str, model: type[M], settings: Settings) -> M:
    """`modules.<module>` of `settings` as the module's model, or a one-line `ConfigError`."""
    try:
        return model.model_validate(settings.modules.sections().get(module) or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        where = _origin(module, str(error["loc"][0]) if error["loc"] else "")
        raise ConfigError(f"invalid configuration ({where}): modules.{module}.{key}: {message}{more}") from None


def check_sections(names: list[str], settings: Settings) -> None:
    """A section for a module that does not exist is a typo: refuse it."""
    sections = settings.modules.sections()
    unknown = sorted(set(sections) - set(names))
    if unknown:
        keys = list(sections[unknown[0]]) if isinstance(sections[unknown[0]], dict) else []
        raise ConfigError(
            f"invalid configuration ({_origin(unknown[0], str(keys[0]) if keys else '')}): "
            f"modules.{unknown[0]} names no module (known: {', '.join(names) or 'none'})"
        )


def install(values: dict[str, BaseModel]) -> None:
    """The settings every loaded module reads from now on (called by the module loader)."""
    _current.update(values)


def settings_of(model: type[M]) -> M:
    """The validated settings of the module defining `model`: `settings_of(Settings)` inside modules/<name>/."""
    name = module_of(model)
    found = _current.get(name)
    if not isinstance(found, model):
        # No app was created in this process (a script, a worker): read the configuration now.
        found = _current[name] = validate_section(name, model, get_settings())
    return found
