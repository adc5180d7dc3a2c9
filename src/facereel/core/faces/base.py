"""Backend protocols and the registries that pick a backend by name.

A backend is one file that defines a class and decorates it with `register_detector` or
`register_embedder`; configuration selects it by name. Constructors are cheap; `load()` reads
weights, so listing or validating backends never loads a model. A detector owns its options: a
frozen dataclass in its own file, parsed from a plain dict (`options.parse_options`).

Which *model* makes the vectors (`Embedder.model`, recorded in every gallery) is kept apart from
which *runtime* executes it (`Embedder.runtime`): the same model run by dlib or by onnxruntime
gives the same vectors, and galleries stay compatible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from facereel.core.types import Box, Detection, FloatArray, ImageArray
from facereel.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Resources every backend may use: where weights live, the cache, threads. Settings that
    belong to one backend (its thresholds, in its units) are that backend's own options."""

    models_dir: Path | None = None
    threads: int = 1
    cache_dir: Path | None = None


ColourMode = Literal["gray", "rgb"]


class Detector(Protocol):
    """Finds faces in an image given at detection scale (boxes in that image's pixels).

    `input` says whether `detect` takes a grey (H x W) or an RGB (H x W x 3) image.
    `min_face_px` is the narrowest face it finds, in pixels of the image it is given, and
    `preferred_size` the short side it is meant to see, so callers choose the detection scale.
    Scores are 0..1 (a backend maps its native scores there, monotonically, and documents how),
    and every backend reports boxes in one geometry, dlib's HOG face box (brows to chin, about
    square), because that is what the 5-point aligner was trained on. `presence_score` is the
    0..1 score a followed face must reach once to count as a face: weaker detections still help
    follow a face through hard frames, but textures give only those.
    """

    name: ClassVar[str]
    input: ClassVar[ColourMode]

    @property
    def min_face_px(self) -> int: ...

    @property
    def preferred_size(self) -> int: ...

    @property
    def presence_score(self) -> float: ...

    def load(self) -> None: ...

    def detect(self, image: ImageArray) -> list[Detection]: ...


class DetectorType(Protocol):
    """A detector class: builds a detector from its own options given as a plain dict."""

    def from_options(self, raw: Mapping[str, Any], shared: BackendOptions) -> Detector: ...


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


AlignerFactory = Callable[[BackendOptions], Aligner]
EmbedderFactory = Callable[[BackendOptions], Embedder]

_DETECTORS: dict[str, DetectorType] = {}
_ALIGNERS: dict[str, AlignerFactory] = {}
_EMBEDDERS: dict[tuple[str, str], EmbedderFactory] = {}

T = TypeVar("T")
D = TypeVar("D", bound=DetectorType)


def register_detector(name: str) -> Callable[[D], D]:
    def add(cls: D) -> D:
        _DETECTORS[name] = cls
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


def make_detector(name: str, shared: BackendOptions,
                  options: Mapping[str, Any] | None = None) -> Detector:
    """Detector `name` with its own `options` (a plain dict, checked by the backend)."""
    if name not in _DETECTORS:
        raise ConfigError(f"unknown detector '{name}'; known: {', '.join(detector_names())}")
    return _DETECTORS[name].from_options(options or {}, shared)


def make_aligner(name: str, options: BackendOptions) -> Aligner:
    if name not in _ALIGNERS:
        raise ConfigError(f"unknown aligner '{name}'; known: {', '.join(sorted(_ALIGNERS))}")
    return _ALIGNERS[name](options)


def make_embedder(model: str, runtime: str, options: BackendOptions) -> Embedder:
    if (model, runtime) not in _EMBEDDERS:
        known = ", ".join(f"{m} ({r})" for m, r in embedder_names())
        raise ConfigError(f"unknown embedder '{model}' with runtime '{runtime}'; known: {known}")
    return _EMBEDDERS[(model, runtime)](options)
