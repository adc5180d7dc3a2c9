"""Parse a backend's options from a plain dict into its own frozen dataclass.

Each backend file declares its options as a small frozen dataclass, so a threshold in one
backend's units can never reach another backend. Settings hand options over as a plain dict
(from JSON in `FACEREEL_DETECTOR_OPTIONS`, or from code); this module turns that dict into the
dataclass, converting strings (environment values) to the declared types and refusing unknown
keys with the list of known ones, so a typo is an error rather than a silently ignored setting.
Range checks live in each dataclass's `__post_init__` and raise `ValueError`, which is reported
here as a `ConfigError` naming the backend.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from facereel.errors import ConfigError

T = TypeVar("T")

_SCALARS: tuple[type, ...] = (bool, int, float, str, Path)


def parse_options(cls: type[T], raw: Mapping[str, Any] | None, backend: str) -> T:
    """`cls(**raw)` with types checked and converted; `backend` names it in error messages."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {backend}; known: {', '.join(known)}"
        )
    values = {name: _convert(value, hints[name], name, backend) for name, value in raw.items()}
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"{backend}: {exc}") from exc


def _convert(value: Any, hint: Any, name: str, backend: str) -> Any:
    """`value` as the declared type: `float`, `int`, `bool`, `str`, `Path` or `X | None`."""
    wanted = _scalar_type(hint)
    if value is None:
        if type(None) in _union_members(hint):
            return None
        raise ConfigError(f"{backend}: option {name!r} needs a {wanted.__name__}, got null")
    try:
        if wanted is bool:
            return _to_bool(value)
        if wanted in (int, float) and isinstance(value, bool):
            raise ValueError("a boolean is not a number")  # bool is an int subclass in Python
        if wanted is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("not a whole number")
        return wanted(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{backend}: option {name!r} needs a {wanted.__name__}, got {value!r} ({exc})"
        ) from exc


def _union_members(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _scalar_type(hint: Any) -> type:
    members = [m for m in _union_members(hint) if m is not type(None)]
    if len(members) != 1 or members[0] not in _SCALARS:
        raise TypeError(f"unsupported option type {hint!r}: use one of bool, int, float, str, Path")
    found: type = members[0]
    return found


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("not a boolean")
