"""Saving and reopening an index: a zip of a JSON header and plain `.npy` arrays, no pickle.

    index.json    {"format", "version", "kind", "dim", "params", "arrays": {name: {dtype, shape}}}
    <name>.npy    each array the header declares, and nothing else

Reading checks everything before it allocates: the header's size and fields, that the members
are exactly the declared arrays, that each declared array is of an allowed dtype and at most
`MAX_MEMBER` bytes, and that its `.npy` header agrees with the declaration. Arrays are read
straight into their final buffers (a file is never held twice in memory), then the backend
checks what they mean (ids unique, sizes consistent) while rebuilding itself.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from facereel.core.index.base import (
    MAX_DIM,
    IndexData,
    VectorIndex,
    VectorIndexError,
    restore,
)

FORMAT = "facereel-index"
VERSION = 1
HEADER = "index.json"
MAX_HEADER = 1 << 20
MAX_MEMBER = 1 << 31  # one array: 4M 128-d float32 vectors
MAX_NPY_HEADER = 1 << 12
READ_STEP = 1 << 24
DTYPES = {"<f4", "<i8"}


def to_bytes(index: VectorIndex) -> bytes:
    buffer = io.BytesIO()
    _write(index.export(), buffer)
    return buffer.getvalue()


def save(index: VectorIndex, path: Path) -> None:
    """Write atomically (temp file + rename): a crash never leaves half an index."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".zip", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write(index.export(), handle)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def from_bytes(data: bytes, source: str = "index") -> VectorIndex:
    return _read(io.BytesIO(data), source)


def load(path: Path) -> VectorIndex:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return _read(handle, str(path))
    except FileNotFoundError as exc:
        raise VectorIndexError(f"index {path} does not exist", "index_not_found") from exc
    except OSError as exc:
        raise VectorIndexError(f"cannot read index {path}: {exc.strerror}") from exc


def _write(data: IndexData, handle: IO[bytes]) -> None:
    header = {"format": FORMAT, "version": VERSION, "kind": data.kind, "dim": data.dim,
              "params": data.params,
              "arrays": {name: {"dtype": array.dtype.str, "shape": list(array.shape)}
                         for name, array in data.arrays.items()}}
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr(HEADER, json.dumps(header))
        for name, array in data.arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array),
                                          allow_pickle=False)


def _read(handle: IO[bytes], source: str) -> VectorIndex:
    try:
        with zipfile.ZipFile(handle) as archive:
            header = _header(archive, source)
            arrays = {name: _array(archive, name, spec, source)
                      for name, spec in header["arrays"].items()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise VectorIndexError(f"{source} is not a facereel index ({exc})") from exc
    return restore(IndexData(header["kind"], header["dim"], header["params"], arrays))


def _header(archive: zipfile.ZipFile, source: str) -> dict[str, Any]:
    names = set(archive.namelist())
    if HEADER not in names or archive.getinfo(HEADER).file_size > MAX_HEADER:
        raise VectorIndexError(f"{source} is not a facereel index (no readable header)")
    header = json.loads(archive.read(HEADER))
    if not isinstance(header, dict) or header.get("format") != FORMAT \
            or header.get("version") != VERSION:
        raise VectorIndexError(f"{source} is not a facereel index (format/version mismatch)")
    kind, dim = header.get("kind"), header.get("dim")
    params, arrays = header.get("params"), header.get("arrays")
    if not isinstance(kind, str) or type(dim) is not int or not 0 < dim <= MAX_DIM \
            or not isinstance(params, dict) or not isinstance(arrays, dict) \
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in params.values()):
        raise VectorIndexError(f"{source} is not a facereel index (malformed header)")
    if names != {HEADER, *(f"{name}.npy" for name in arrays)}:
        raise VectorIndexError(f"{source}: members differ from the arrays its header declares")
    return header


def _array(archive: zipfile.ZipFile, name: str, spec: Any, source: str) -> np.ndarray:
    """One declared array, its size checked against the declaration before it is read."""
    dtype, shape = _declared(spec, name, source)
    size = math.prod(shape) * np.dtype(dtype).itemsize
    member = archive.getinfo(f"{name}.npy")
    if not 0 < member.file_size - size <= MAX_NPY_HEADER:
        raise VectorIndexError(f"{source}: {name} is not the size its header declares")
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        found_shape, fortran, found_dtype = read_header(stream, max_header_size=MAX_NPY_HEADER)
        if tuple(found_shape) != shape or fortran or found_dtype.str != dtype:
            raise VectorIndexError(f"{source}: {name} differs from its declaration")
        array = np.empty(shape, dtype=dtype)
        _fill(stream, array.reshape(-1).view(np.uint8), f"{source}: {name}")
    return array


def _fill(stream: IO[bytes], buffer: npt.NDArray[np.uint8], what: str) -> None:
    """Read exactly len(buffer) bytes into it, READ_STEP at a time (the array is never held
    a second time as one bytes object)."""
    filled = 0
    while filled < len(buffer):
        piece = stream.read(min(READ_STEP, len(buffer) - filled))
        if not piece:
            raise VectorIndexError(f"{what} is truncated")
        buffer[filled:filled + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        filled += len(piece)


def _declared(spec: Any, name: str, source: str) -> tuple[str, tuple[int, ...]]:
    if not isinstance(spec, dict) or spec.get("dtype") not in DTYPES \
            or not isinstance(spec.get("shape"), list) or not 1 <= len(spec["shape"]) <= 2 \
            or not all(type(n) is int and n >= 0 for n in spec["shape"]):
        raise VectorIndexError(f"{source}: array {name!r} is malformed")
    shape = tuple(spec["shape"])
    if math.prod(shape) * np.dtype(spec["dtype"]).itemsize > MAX_MEMBER:
        raise VectorIndexError(f"{source}: array {name} is larger than {MAX_MEMBER} bytes",
                               "too_large")
    return str(spec["dtype"]), shape
