"""One `Settings` object, built at the entry point and passed down in sections (no globals).

Values come from, highest priority first: keyword arguments and command-line options
(`Settings(workers=2)`, `Settings.with_overrides`), `FACEREEL_*` environment variables, a `.env`
file, and the original deployment's variable names (see `legacy_env`). Every field can be named
two ways: by its section (`FACEREEL_RECOGNITION__THRESHOLD`, `Settings(recognition={...})`) or
by its flat name (`FACEREEL_THRESHOLD`, `Settings(threshold=0.5)`), which stays the documented
spelling. A bucket's own fields nest under its name: `FACEREEL_INPUT__ENDPOINT`.

Secrets (`api_keys`, `aws_secret_key`, a bucket's `secret_key`, `invoke_key`) are `SecretStr`:
printing the settings never shows them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from facereel.config.hosts import DeploySettings, OpenFaasSettings, RaySettings
from facereel.config.legacy_env import legacy_settings
from facereel.config.sections import (
    SECTIONS,
    BucketSettings,
    HttpSettings,
    ImageTierSettings,
    MemorySettings,
    PipelineSettings,
    RecognitionSettings,
    StorageSettings,
    secret,
)
from facereel.errors import ConfigError

__all__ = ["BucketSettings", "DeploySettings", "HttpSettings", "ImageTierSettings",
           "MemorySettings", "OpenFaasSettings", "PipelineSettings", "RaySettings",
           "RecognitionSettings", "Settings", "StorageSettings", "flat_names", "secret"]

PREFIX = "FACEREEL_"
ALIASES = {"segment": "window"}  # old flat names of renamed fields
TOP_LEVEL = ("log_level", "log_format")


def flat_names() -> dict[str, str]:
    """Flat field name -> its section, e.g. `threshold` -> `recognition`."""
    names: dict[str, str] = {}
    for section, model in SECTIONS.items():
        for name in model.model_fields:
            if name in names:  # a flat name must say which field it is
                raise ConfigError(f"settings field {name!r} is in {names[name]} and {section}")
            names[name] = section
    return names


FLAT = flat_names()


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """Flat names moved into their sections; section and top-level keys kept as they are.
    A flat name given beside its section's value wins (it is the more specific one)."""
    nested: dict[str, Any] = {}
    flat: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        name = ALIASES.get(key, key)
        if name in FLAT:
            flat.setdefault(FLAT[name], {})[name] = value
        else:
            nested[key] = value
    for section, fields in flat.items():
        current = nested.get(section)
        base = current.model_dump() if isinstance(current, BaseModel) else dict(current or {})
        nested[section] = _deep_merge(base, fields)
    return nested


def config_error(exc: ValidationError, options: Collection[str] = ()) -> ConfigError:
    """A settings problem as one line naming the setting the way the user wrote it: the
    command-line option (`--workers -1`) for the fields in `options`, else the variable
    (`FACEREEL_WORKERS=-1`); never pydantic's multi-line dump."""
    problems = []
    for error in exc.errors():
        path = [str(p) for p in error["loc"]]
        field = path[-1] if path else "?"
        if len(path) >= 2 and path[0] == "storage" and path[1] in ("input", "stage1", "output"):
            field = "__".join(path[1:])
        message = str(error["msg"]).removeprefix("Value error, ")
        if field in options:
            problems.append(f"--{field.replace('_', '-')} {error.get('input')}: {message}")
        else:
            problems.append(f"FACEREEL_{field.upper()}={error.get('input')!r}: {message}")
    return ConfigError("invalid setting: " + "; ".join(problems))


class _Nested(PydanticBaseSettingsSource):
    """Another source's values with flat names moved into their sections, so sources of
    different priority merge field by field."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for every field at once

    def __call__(self) -> dict[str, Any]:
        return nest(self.inner())


def _flat_lookup(variables: dict[str, str]) -> dict[str, Any]:
    """`FACEREEL_<FLAT NAME>` and `FACEREEL_<BUCKET>__<FIELD>` variables as flat values."""
    found: dict[str, Any] = {}
    for variable, value in variables.items():
        upper = variable.upper()
        if not upper.startswith(PREFIX) or value is None:
            continue
        name, _, sub = upper[len(PREFIX):].lower().partition("__")
        name = ALIASES.get(name, name)
        if name not in FLAT:
            continue
        if sub:
            found.setdefault(name, {})
            if isinstance(found[name], dict):
                found[name][sub] = value
        else:
            found[name] = _decoded(name, value)
    return found


def _decoded(name: str, value: str) -> Any:
    """A JSON object for a field that holds one (`FACEREEL_DETECTOR_OPTIONS='{"a": 1}'`), as
    pydantic's own environment source decodes complex fields; anything else as given."""
    field = SECTIONS[FLAT[name]].model_fields[name]
    if "dict" not in str(field.annotation):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # validation says what is wrong with it


class _FlatVariables(PydanticBaseSettingsSource):
    """The flat `FACEREEL_*` names, from the environment or from a `.env` file."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: Path | None) -> None:
        super().__init__(settings_cls)
        self.env_file = env_file

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.env_file is None:
            variables = dict(os.environ)
        elif self.env_file.is_file():
            variables = {k: v for k, v in dotenv_values(self.env_file).items() if v is not None}
        else:
            return {}
        return nest(_flat_lookup(variables))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", extra="ignore",
                                      frozen=True, env_nested_delimiter="__")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        legacy = InitSettingsSource(settings_cls, legacy_settings())
        return (_Nested(settings_cls, init_settings), env_settings,
                _FlatVariables(settings_cls, None), dotenv_settings,
                _FlatVariables(settings_cls, Path(".env")), _Nested(settings_cls, legacy),
                file_secret_settings)

    log_level: str = "WARNING"
    log_format: str = Field("text", pattern="^(text|json)$")
    recognition: RecognitionSettings = RecognitionSettings()
    storage: StorageSettings = StorageSettings()
    pipeline: PipelineSettings = PipelineSettings()
    http: HttpSettings = HttpSettings()
    image_tier: ImageTierSettings = ImageTierSettings()
    openfaas: OpenFaasSettings = OpenFaasSettings()
    deploy: DeploySettings = DeploySettings()
    ray: RaySettings = RaySettings()
    memory: MemorySettings = MemorySettings()

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given non-None values replaced (command-line options), validated
        like any other source: `--workers -1` is refused as `FACEREEL_WORKERS=-1` would be."""
        changes = {k: v for k, v in values.items() if v is not None}
        if not changes:
            return self
        current = {name: getattr(self, name) for name in (*TOP_LEVEL, *SECTIONS)}
        merged = _deep_merge({k: v.model_dump() if isinstance(v, BaseModel) else v
                              for k, v in current.items()}, nest(changes))
        return type(self).model_validate(merged)

    @property
    def data_dir(self) -> Path:
        return self.storage.data_dir

    @property
    def audit_path(self) -> Path:
        return self.memory.audit_log or self.storage.data_dir / "audit.log"
