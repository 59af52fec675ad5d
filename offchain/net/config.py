"""Loading agent configs from TOML files with command-line overrides."""

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or flag that is unreadable, unknown or of the wrong type."""


def load_config(cls: type[T], path: str | Path | None, overrides: dict[str, Any]) -> T:
    """Return ``cls`` built from the TOML file at ``path`` (if any), then ``overrides``.

    Overrides whose value is None are ignored, so unset command-line flags keep the file's value.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values.update(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown config keys: {sorted(unknown)}")
    for name, value in values.items():
        _check_type(name, value, fields[name].type)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def _check_type(name: str, value: Any, annotation: Any) -> None:
    text = str(annotation)
    if "list" in text:
        ok = isinstance(value, list | tuple)
    elif "float" in text:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif "int" in text:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif "bool" in text:
        ok = isinstance(value, bool)
    elif "str" in text:
        ok = isinstance(value, str)
    else:
        ok = True
    if value is None and "None" in text:
        ok = True
    if not ok:
        raise ConfigError(f"config key {name!r} has the wrong type: {value!r}")
