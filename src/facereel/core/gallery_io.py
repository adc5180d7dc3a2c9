"""Import galleries in the formats users bring, without ever executing them.

- `encoding`: a pickle `{"name": [...], "encoding": [arrays]}` (the face_recognition habit).
- `data.pt`: `torch.save([embeddings, names])`, FaceNet 512-d vectors (a zip holding a pickle).
- a facereel `.npz` gallery.

Both pickle formats go through restricted unpicklers that admit only plain containers and numpy
arrays (and, for torch files, tensors rebuilt here as numpy arrays): a pickle that names any
other callable is refused before anything runs. torch itself is never imported.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facereel.core.gallery import Gallery
from facereel.core.types import FloatArray
from facereel.errors import GalleryError, UnsafePickleError

FACENET_MODEL = "facenet"  # torch-list galleries hold FaceNet (InceptionResnetV1) vectors
MAX_GALLERY_BYTES = 512 << 20
MAX_FACES = 200_000  # vectors one imported file may bring (a 12 MB pickle brought 3 million)
MAX_DIM = 4096
MAX_NAME = 200

_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY_GLOBALS[(_module, "_reconstruct")] = np._core.multiarray._reconstruct  # type: ignore[attr-defined]
    _NUMPY_GLOBALS[(_module, "scalar")] = np._core.multiarray.scalar  # type: ignore[attr-defined]


class RestrictedUnpickler(pickle.Unpickler):
    """Admits only the globals in `allowed`; anything else raises UnsafePickleError."""

    def __init__(self, data: bytes, allowed: dict[tuple[str, str], Any], source: str) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        raise UnsafePickleError(
            f"{self._source}: refused to load pickle: it references {module}.{name}, but only "
            "plain containers and numpy arrays are allowed (the file may be malicious)"
        )


def _unpickle(data: bytes, allowed: dict[tuple[str, str], Any], source: str,
              persistent_load: Callable[[Any], Any] | None = None) -> Any:
    unpickler = RestrictedUnpickler(data, allowed, source)
    if persistent_load is not None:
        unpickler.persistent_load = persistent_load  # type: ignore[method-assign]
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # any malformed pickle is a bad gallery file, never a crash
        raise GalleryError(f"{source}: not a readable gallery pickle ({exc})") from exc


def _vector(item: Any, source: str, index: int) -> FloatArray:
    """One embedding: a numeric array or a flat list of numbers, at most MAX_DIM of them. The
    shape is checked before anything is converted: a pickle can reference one list from
    itself (a 228-byte file became 5.8 GB when turned into an array)."""
    if isinstance(item, np.ndarray):
        if item.dtype.kind not in "fiu" or item.size > MAX_DIM or item.ndim > 2:
            raise GalleryError(f"{source}: embedding {index} is not a vector of numbers "
                               f"({item.dtype}, shape {item.shape})")
        return np.asarray(item, dtype=np.float32).ravel()
    if isinstance(item, list | tuple) and len(item) <= MAX_DIM and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in item):
        return np.asarray(item, dtype=np.float32)
    raise GalleryError(f"{source}: embedding {index} is not a flat list of at most {MAX_DIM} "
                       "numbers")


def _as_matrix(items: Any, source: str) -> FloatArray:
    """The embeddings as a faces x dim matrix, refused unless they are at most MAX_FACES
    vectors of one length."""
    if not isinstance(items, list | tuple | np.ndarray):
        raise GalleryError(f"{source}: embeddings are not a list")
    if len(items) > MAX_FACES:
        raise GalleryError(f"{source}: {len(items)} embeddings, more than the {MAX_FACES} one "
                           "gallery file may bring", "too_large")
    rows = [_vector(item, source, index) for index, item in enumerate(items)]
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    if len({len(row) for row in rows}) != 1:
        raise GalleryError(f"{source}: embeddings have different lengths")
    return np.vstack(rows)


def _names(items: Any, count: int, source: str) -> list[str]:
    if not isinstance(items, list | tuple) or len(items) != count or not all(
            isinstance(n, str) and 0 < len(n) <= MAX_NAME for n in items):
        raise GalleryError(f"{source}: names must be {count} strings of 1-{MAX_NAME} "
                           "characters, one per embedding")
    return list(items)


def read_encoding_pickle(path: Path) -> tuple[list[str], FloatArray]:
    """Names and vectors of a face_recognition-style `encoding` pickle."""
    data = _unpickle(_read(path), _NUMPY_GLOBALS, path.name)
    if not isinstance(data, dict) or "name" not in data or "encoding" not in data:
        raise GalleryError(f"{path.name}: expected a dict with 'name' and 'encoding' lists")
    matrix = _as_matrix(data["encoding"], path.name)
    return _names(data["name"], len(matrix), path.name), matrix


class _StorageType:
    def __init__(self, dtype: type[np.generic]) -> None:
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage: Any, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_: Any) -> FloatArray:
    """A tensor as a numpy array, its view checked to lie inside its storage (a strided view
    past the end would read memory that is not the file's)."""
    if not isinstance(storage, np.ndarray):
        raise GalleryError("tensor storage is not an array")
    values = (offset, *size, *stride)
    if len(size) != len(stride) or len(size) > 4 or not all(
            isinstance(v, int) and v >= 0 for v in values):
        raise GalleryError("tensor has an invalid shape")
    elements = int(np.prod(size)) if size else 1
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) if elements else 0
    if elements > MAX_FACES * MAX_DIM or last >= len(storage):
        raise GalleryError("tensor reaches outside its storage or is too large")
    flat = storage[offset:]
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat, shape=size, strides=[s * item for s in stride])
    return np.array(view)


_TORCH_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch", "FloatStorage"): _StorageType(np.float32),
    ("torch", "DoubleStorage"): _StorageType(np.float64),
    ("torch", "HalfStorage"): _StorageType(np.float16),
    ("collections", "OrderedDict"): OrderedDict,
}


def read_torch_list(path: Path) -> tuple[list[str], FloatArray]:
    """Names and vectors of a `torch.save([embeddings, names])` file, without torch."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(_read(path)))
    except zipfile.BadZipFile as exc:
        raise GalleryError(f"{path.name}: not a torch zip archive") from exc
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if not pickles:
            raise GalleryError(f"{path.name}: torch archive has no data.pkl")
        root = pickles[0][: -len("data.pkl")]

        def load_storage(pid: Any) -> Any:
            if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
                raise GalleryError(f"{path.name}: unexpected persistent id {pid!r}")
            kind, key = pid[1], str(pid[2])
            if not isinstance(kind, _StorageType):
                raise UnsafePickleError(f"{path.name}: unsupported tensor storage {kind!r}")
            return np.frombuffer(read_member(archive, f"{root}data/{key}", path.name),
                                 dtype=kind.dtype)

        data = _unpickle(read_member(archive, pickles[0], path.name), _TORCH_GLOBALS,
                         path.name, load_storage)
    if not (isinstance(data, list | tuple) and len(data) == 2):
        raise GalleryError(f"{path.name}: expected [embeddings, names]")
    embeddings, names = data
    matrix = _as_matrix(embeddings, path.name)
    return _names(names, len(matrix), path.name), matrix


def read_member(archive: zipfile.ZipFile, name: str, source: str,
                limit: int = MAX_GALLERY_BYTES) -> bytes:
    """One member of a zip, refused when it would unpack to more than `limit` bytes (a small
    compressed member can claim gigabytes)."""
    try:
        info = archive.getinfo(name)
    except KeyError as exc:
        raise GalleryError(f"{source}: no {name} in the archive") from exc
    if info.file_size > limit:
        raise GalleryError(f"{source}: {name} unpacks to {info.file_size} bytes, more than a "
                           "gallery may hold", "too_large")
    return archive.read(info)


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_GALLERY_BYTES:
            raise GalleryError(f"{path.name}: {size} bytes is too large for a gallery file")
        return path.read_bytes()
    except OSError as exc:
        raise GalleryError(f"cannot read {path}: {exc.strerror}") from exc


def read_gallery_file(path: Path, embedder: str, dim: int) -> Gallery:
    """Any supported gallery file as a Gallery; the caller's embedder decides compatibility.

    A pickle of dlib-style vectors is taken to be from `embedder` when its dimension fits; a torch
    list is FaceNet's by format, so importing it into a gallery of another model fails loudly.
    """
    path = Path(path)
    if not path.is_file():
        raise GalleryError(f"gallery file {path} does not exist", "gallery_not_found")
    head = path.open("rb").read(4)
    if head.startswith(b"PK"):
        if _is_npz(path):
            return Gallery.load(path)
        names, vectors = read_torch_list(path)
        source_model = FACENET_MODEL
    elif head[:1] == b"\x80":
        names, vectors = read_encoding_pickle(path)
        source_model = embedder if vectors.shape[1] == dim else f"unknown {vectors.shape[1]}-d"
    else:
        raise GalleryError(f"{path.name}: not a gallery (expected a pickle, torch or .npz file)")
    if source_model != embedder or vectors.shape[1] != dim:
        raise GalleryError(
            f"{path.name} holds {vectors.shape[1]}-d vectors from '{source_model}', but this "
            f"gallery uses '{embedder}' ({dim}-d); vectors from different models cannot be "
            "compared, so they were not imported",
            "embedder_mismatch",
        )
    # each person's vectors together, people in order of first appearance, in one copy
    first: dict[str, int] = {}
    for name in names:
        first.setdefault(name, len(first))
    order = np.argsort([first[name] for name in names], kind="stable")
    gallery = Gallery(embedder, dim)
    gallery.extend([names[i] for i in order.tolist()], vectors[order])
    return gallery


def _is_npz(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return "header.npy" in archive.namelist()
