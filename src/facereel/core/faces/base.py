"""Backend protocols and the registries that pick a backend by name.

A backend is one file that defines a class and decorates it with `register_detector` or
`register_embedder`; configuration selects it by name. Constructors are cheap; `load()` reads
weights, so listing or validating backends never loads a model.

Which *model* makes the vectors (`Embedder.model`, recorded in every gallery) is kept apart from
which *runtime* executes it (`Embedder.runtime`): the same model run by dlib or by onnxruntime
gives the same vectors, and galleries stay compatible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, TypeVar

from facereel.core.types import Box, Detection, FloatArray, ImageArray
from facereel.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Options every backend may read; each backend ignores what it does not use."""

    models_dir: Path | None = None
    threads: int = 1
    min_score: float = 0.0
    upsample: int = 0
    cache_dir: Path | None = None


class Detector(Protocol):
    """Finds faces in an image given at detection scale (boxes in that image's pixels)."""

    name: ClassVar[str]

    def load(self) -> None: ...

    def detect(self, image: ImageArray) -> list[Detection]: ...


class Aligner(Protocol):
    """Turns face boxes on a full-resolution RGB image into the chips an embedder expects."""

    name: ClassVar[str]

    def load(self) -> None: ...

    def chips(self, rgb: ImageArray, boxes: Sequence[Box]) -> list[ImageArray]: ...


class Embedder(Protocol):
    """Maps aligned chips (N x H x W x 3 uint8) to vectors (N x dim float32)."""

    model: ClassVar[str]
    runtime: ClassVar[str]
    dim: ClassVar[int]
    aligner: ClassVar[str]

    def load(self) -> None: ...

    def embed(self, chips: Sequence[ImageArray]) -> FloatArray: ...


DetectorFactory = Callable[[BackendOptions], Detector]
AlignerFactory = Callable[[BackendOptions], Aligner]
EmbedderFactory = Callable[[BackendOptions], Embedder]

_DETECTORS: dict[str, DetectorFactory] = {}
_ALIGNERS: dict[str, AlignerFactory] = {}
_EMBEDDERS: dict[tuple[str, str], EmbedderFactory] = {}

T = TypeVar("T")


def register_detector(name: str) -> Callable[[T], T]:
    def add(cls: T) -> T:
        _DETECTORS[name] = cls  # type: ignore[assignment]
        return cls

    return add


def register_aligner(name: str) -> Callable[[T], T]:
    def add(cls: T) -> T:
        _ALIGNERS[name] = cls  # type: ignore[assignment]
        return cls

    return add


def register_embedder(model: str, runtime: str) -> Callable[[T], T]:
    def add(cls: T) -> T:
        _EMBEDDERS[(model, runtime)] = cls  # type: ignore[assignment]
        return cls

    return add


def detector_names() -> list[str]:
    return sorted(_DETECTORS)


def embedder_names() -> list[tuple[str, str]]:
    return sorted(_EMBEDDERS)


def make_detector(name: str, options: BackendOptions) -> Detector:
    if name not in _DETECTORS:
        raise ConfigError(f"unknown detector '{name}'; known: {', '.join(detector_names())}")
    return _DETECTORS[name](options)


def make_aligner(name: str, options: BackendOptions) -> Aligner:
    if name not in _ALIGNERS:
        raise ConfigError(f"unknown aligner '{name}'; known: {', '.join(sorted(_ALIGNERS))}")
    return _ALIGNERS[name](options)


def make_embedder(model: str, runtime: str, options: BackendOptions) -> Embedder:
    if (model, runtime) not in _EMBEDDERS:
        known = ", ".join(f"{m} ({r})" for m, r in embedder_names())
        raise ConfigError(f"unknown embedder '{model}' with runtime '{runtime}'; known: {known}")
    return _EMBEDDERS[(model, runtime)](options)
