"""Loading agent configs from TOML files with command-line overrides.

An agent's config is a frozen dataclass (``RouterConfig``, ``NodeConfig``) whose
``__post_init__`` checks the values' ranges. The types are checked first, by a pydantic model
built from the dataclass's fields in strict mode: a TOML string never becomes a number, a bool
is not an int, and an unknown key is an error.
"""

import dataclasses
import functools
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or flag that is unreadable, unknown or of the wrong type."""


def load_config(cls: type[T], path: str | Path | None, overrides: dict[str, Any]) -> T:
    """Return ``cls`` built from the TOML file at ``path`` (if any), then ``overrides``.

    Overrides whose value is None or an empty tuple are ignored, so unset command-line flags
    (a repeatable option given no times arrives as ``()``) keep the file's value.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values.update(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    # Repeated command-line flags arrive as tuples; the file's arrays as lists.
    given = {k: v for k, v in overrides.items() if v is not None and v != ()}
    values.update({k: list(v) if isinstance(v, tuple) else v for k, v in given.items()})
    try:
        checked = _schema(cls).model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, values)) from exc
    try:
        return cls(**checked.model_dump(exclude_unset=True))
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


@functools.cache
def _schema(cls: type) -> type[BaseModel]:
    """Return a strict pydantic model with the fields and types of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {f.name: (hints[f.name], None) for f in dataclasses.fields(cls)}
    return create_model(
        f"{cls.__name__}Values",
        __config__=ConfigDict(strict=True, extra="forbid"),
        **fields,
    )


def _describe(error: ValidationError, values: dict[str, Any]) -> str:
    """Return one line naming the unknown keys, or the first key of the wrong type."""
    problems = error.errors()
    unknown = sorted(str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden")
    if unknown:
        return f"unknown config keys: {unknown}"
    name = str(problems[0]["loc"][0])
    return f"config key {name!r} has the wrong type: {values.get(name)!r} ({problems[0]['msg']})"
