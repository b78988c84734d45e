"""Provider settings: config file, environment, command line, the later winning.

Sources, lowest precedence first:

1. ``mcv.toml`` in the working directory if present, else ``$XDG_CONFIG_HOME/mcv/config.toml``
   (``~/.config/mcv/config.toml``): a ``[providers.<name>]`` table.
2. Environment variables ``MCV_<PROVIDER>_<KEY>`` (upper case).
3. ``-o key=value`` options on the command line.

A provider declares its keys as :class:`Setting` values; an unknown key is an error that
lists the valid ones. Secret values are read, never echoed (see :func:`redact`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multicloud_cv.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One provider setting: its key, what it means, its default, whether it is secret."""

    name: str
    help: str
    default: str | None = None
    secret: bool = False
    required: bool = False

    def env_var(self, provider: str) -> str:
        """The environment variable that sets this key for ``provider``."""
        return f"MCV_{provider.upper()}_{self.name.upper()}"


def config_file_path(cwd: Path | None = None) -> Path | None:
    """The config file in use: ``./mcv.toml`` first, then the XDG one; ``None`` if neither exists."""
    local = (cwd or Path.cwd()) / "mcv.toml"
    if local.is_file():
        return local
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    user = base / "mcv" / "config.toml"
    return user if user.is_file() else None


def _file_table(provider: str, path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}; fix the file or remove it") from exc
    table = data.get("providers", {}).get(provider, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [providers.{provider}] must be a table")
    return {str(k): _to_str(v) for k, v in table.items()}


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``-o key=value`` options into a mapping; a pair without ``=`` is an error."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option '{pair}' is not key=value; write e.g. -o instance_type=ml.p3.2xlarge")
        result[key.strip()] = value
    return result


def resolve(
    provider: str,
    settings: Iterable[Setting],
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    use_config_file: bool = True,
) -> dict[str, str]:
    """Merge file, environment and overrides for ``provider``; fill defaults.

    Raises :class:`ConfigError` for a key the provider does not declare. Missing
    required keys are not an error here (listing providers must work without them);
    :func:`missing_required` reports them.
    """
    declared = {s.name: s for s in settings}
    env = os.environ if environ is None else environ
    path = config_path if config_path is not None else (config_file_path() if use_config_file else None)
    merged: dict[str, str] = {}
    for key, value in _file_table(provider, path).items():
        _check_key(provider, key, declared, f"config file {path}")
        merged[key] = value
    for setting in declared.values():
        if setting.env_var(provider) in env:
            merged[setting.name] = env[setting.env_var(provider)]
    for key, value in (overrides or {}).items():
        _check_key(provider, key, declared, "-o")
        merged[key] = value
    for setting in declared.values():
        if setting.name not in merged and setting.default is not None:
            merged[setting.name] = setting.default
    return merged


def _check_key(provider: str, key: str, declared: Mapping[str, Setting], source: str) -> None:
    if key not in declared:
        valid = ", ".join(sorted(declared)) or "(none)"
        raise ConfigError(f"unknown setting '{key}' for provider '{provider}' ({source}); valid keys: {valid}")


def missing_required(settings: Iterable[Setting], values: Mapping[str, str]) -> list[str]:
    """Names of required settings with no value."""
    return [s.name for s in settings if s.required and not values.get(s.name)]


def redact(settings: Iterable[Setting], values: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``values`` with every secret replaced by ``'***'`` (for logs and records)."""
    secret = {s.name for s in settings if s.secret}
    return {k: ("***" if k in secret else v) for k, v in values.items()}


def positive_int(values: Mapping[str, str], key: str, default: int) -> int:
    """``values[key]`` (or ``default`` when empty) as a whole number >= 1; :class:`ConfigError` naming the key."""
    raw = values.get(key) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"setting '{key}' must be a whole number, got '{raw}'") from None
    if value < 1:
        raise ConfigError(f"setting '{key}' must be at least 1, got {value}")
    return value


def positive_float(values: Mapping[str, str], key: str, default: float) -> float:
    """``values[key]`` (or ``default`` when empty) as a number > 0; :class:`ConfigError` naming the key."""
    raw = values.get(key) or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"setting '{key}' must be a number, got '{raw}'") from None
    if value <= 0:
        raise ConfigError(f"setting '{key}' must be positive, got {value:g}")
    return value
