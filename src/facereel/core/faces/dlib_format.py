"""Readers for dlib's binary serialization format.

dlib writes everything through ``dlib/serialize.h``: integers as a control byte (low nibble =
number of little-endian magnitude bytes that follow, bit 0x80 = negative), floats as a
(mantissa, exponent) pair of such integers, booleans as the ASCII bytes ``'0'``/``'1'`` and
strings as a length followed by raw bytes.  The DNN code (``dlib/dnn``) adds tensors and the
per-layer records read here.  Nothing in this module is specific to one model file, so it
serves the face-recognition ResNet as well as e.g. the MMOD face detector.
"""

from __future__ import annotations

import math
from collections.abc import Container
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Dims = tuple[int, int, int, int]

# dlib's float_details reserves these exponents for non-finite values.
_EXPONENT_INF = 32000
_EXPONENT_NINF = 32001
_EXPONENT_NAN = 32002
# pack_int never sets these control-byte bits; dlib itself uses them to tell its binary
# floats from its older ASCII float format.
_RESERVED_BITS = 0x70


class DlibFormatError(ValueError):
    """The bytes are not the dlib serialization that was expected."""

    def __init__(self, expected: str, offset: int, detail: str = "") -> None:
        message = f"expected {expected} at byte offset {offset}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.offset = offset


class DlibReader:
    """Sequential reader over one dlib-serialized byte string."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def offset(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, count: int, what: str) -> bytes:
        if count > self.remaining:
            raise DlibFormatError(what, self._pos, f"needs {count} bytes, {self.remaining} left")
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def read_int(self, what: str = "integer") -> int:
        start = self._pos
        control = self._take(1, what)[0]
        size = control & 0x0F
        if control & _RESERVED_BITS or size > 8:
            raise DlibFormatError(what, start, f"invalid control byte 0x{control:02x}")
        magnitude = int.from_bytes(self._take(size, what), "little")
        return -magnitude if control & 0x80 else magnitude

    def expect_int(self, allowed: Container[int], what: str) -> int:
        start = self._pos
        value = self.read_int(what)
        if value not in allowed:
            raise DlibFormatError(what, start, f"got {value}")
        return value

    def read_float(self, what: str = "float") -> float:
        start = self._pos
        if self.remaining and self._data[start] & _RESERVED_BITS:
            raise DlibFormatError(what, start, "old ASCII float encoding is not supported")
        mantissa = self.read_int(f"{what} (mantissa)")
        exponent = self.read_int(f"{what} (exponent)")
        if exponent == _EXPONENT_INF:
            return math.inf
        if exponent == _EXPONENT_NINF:
            return -math.inf
        if exponent >= _EXPONENT_NAN:
            return math.nan  # dlib maps every exponent past is_ninf to NaN
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError:
            raise DlibFormatError(what, start, f"{mantissa} * 2**{exponent} overflows") from None

    def read_bool(self, what: str = "bool") -> bool:
        start = self._pos
        byte = self._take(1, what)
        if byte not in (b"0", b"1"):
            raise DlibFormatError(what, start, f"got byte 0x{byte[0]:02x}, not '0' or '1'")
        return byte == b"1"

    def read_string(self, what: str = "string") -> str:
        start = self._pos
        length = self.read_int(f"{what} (length)")
        if length < 0:
            raise DlibFormatError(what, start, f"negative length {length}")
        raw = self._take(length, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DlibFormatError(what, start, f"not UTF-8 ({exc.reason})") from None

    def expect_string(self, allowed: Container[str], what: str) -> str:
        start = self._pos
        value = self.read_string(what)
        if value not in allowed:
            raise DlibFormatError(what, start, f"got {value!r}")
        return value

    def _read_dims(self, what: str) -> Dims:
        start = self._pos
        n, k, nr, nc = (self.read_int(f"{what} (dimension)") for _ in range(4))
        if min(n, k, nr, nc) < 0:
            raise DlibFormatError(what, start, f"negative dimension in {(n, k, nr, nc)}")
        return n, k, nr, nc

    def read_tensor(self, what: str = "tensor") -> FloatArray:
        """A resizable_tensor: version 2, (num_samples, k, nr, nc), raw little-endian float32."""
        self.expect_int({2}, f"{what} (tensor version)")
        dims = self._read_dims(what)
        count = dims[0] * dims[1] * dims[2] * dims[3]
        raw = self._take(4 * count, f"{what} data ({count} float32 values)")
        # astype copies, so the array owns native-endian memory rather than pinning the file.
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def read_alias_tensor(self, what: str = "alias_tensor") -> Dims:
        """An alias_tensor: only the shape of a view into a layer's params tensor."""
        self.expect_int({1}, f"{what} (alias_tensor version)")
        return self._read_dims(what)

    def expect_end(self) -> None:
        if self.remaining:
            raise DlibFormatError("end of data", self._pos, f"{self.remaining} bytes left over")


# ---------------------------------------------------------------------------------------------
# Layer records of dlib/dnn/layers.h.  Each add_layer serializes its "details" object; these
# readers consume one such object, starting at its name string.


@dataclass(frozen=True)
class ConLayer:
    """con_: cross-correlation with per-filter bias (``bias`` is None when disabled)."""

    filters: FloatArray  # (num_filters, k, nr, nc)
    bias: FloatArray | None  # (num_filters,)
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x)


@dataclass(frozen=True)
class AffineLayer:
    """affine_: y = gamma * x + beta; mode 0 = one value per channel, 1 = per element."""

    gamma: FloatArray  # alias shape, e.g. (1, k, 1, 1)
    beta: FloatArray
    mode: int


@dataclass(frozen=True)
class PoolLayer:
    """max_pool_ / avg_pool_; a window of (0, 0) means "the whole input"."""

    kind: str  # "max" or "avg"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class FcLayer:
    """fc_: output = input @ weights (+ bias)."""

    weights: FloatArray  # (num_inputs, num_outputs)
    bias: FloatArray | None  # (num_outputs,)


@dataclass(frozen=True)
class PlainLayer:
    """A layer whose record is just its name (relu_, add_prev_, ...)."""

    name: str


LayerDetails = ConLayer | AffineLayer | PoolLayer | FcLayer | PlainLayer

# Only names checked against real files; add others as models that use them come along.
_PLAIN_LAYERS = frozenset({"relu_", "add_prev_"})


def _split(params: FloatArray, shapes: list[Dims], start: int) -> list[FloatArray]:
    """Cut a layer's flat params tensor into the views its alias_tensors describe."""
    flat = params.reshape(-1)
    sizes = [int(np.prod(shape)) for shape in shapes]
    if sum(sizes) != flat.size:
        raise DlibFormatError("params matching the layer's views", start, f"{sizes} vs {flat.size}")
    bounds = np.cumsum([0, *sizes])
    return [flat[a:b].reshape(s) for a, b, s in zip(bounds[:-1], bounds[1:], shapes, strict=True)]


def _read_con(reader: DlibReader, name: str, start: int) -> ConLayer:
    params = reader.read_tensor("con_ params")
    num_filters, _nr, _nc, stride_y, stride_x, pad_y, pad_x = (
        reader.read_int("con_ setting") for _ in range(7)
    )
    filters = reader.read_alias_tensor("con_ filters")
    biases = reader.read_alias_tensor("con_ biases")
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        reader.read_float("con_ multiplier")
    use_bias = reader.read_bool("con_ use_bias") if name == "con_5" else True
    if filters[0] != num_filters:
        raise DlibFormatError("con_ filter count", start, f"{filters[0]} vs {num_filters}")
    shapes = [filters, biases] if use_bias else [filters]
    parts = _split(params, shapes, start)
    bias = parts[1].reshape(-1) if use_bias else None
    return ConLayer(parts[0], bias, (stride_y, stride_x), (pad_y, pad_x))


def _read_affine(reader: DlibReader, start: int) -> AffineLayer:
    params = reader.read_tensor("affine_ params")
    gamma = reader.read_alias_tensor("affine_ gamma")
    beta = reader.read_alias_tensor("affine_ beta")
    mode = reader.expect_int({0, 1}, "affine_ mode")
    parts = _split(params, [gamma, beta], start)
    return AffineLayer(parts[0], parts[1], mode)


def _read_pool(reader: DlibReader, name: str) -> PoolLayer:
    nr, nc, stride_y, stride_x, pad_y, pad_x = (
        reader.read_int(f"{name} setting") for _ in range(6)
    )
    kind = "max" if name.startswith("max") else "avg"
    return PoolLayer(kind, (nr, nc), (stride_y, stride_x), (pad_y, pad_x))


def _read_fc(reader: DlibReader, start: int) -> FcLayer:
    num_outputs = reader.read_int("fc_ num_outputs")
    num_inputs = reader.read_int("fc_ num_inputs")
    params = reader.read_tensor("fc_ params")
    weights = reader.read_alias_tensor("fc_ weights")
    biases = reader.read_alias_tensor("fc_ biases")
    has_bias = reader.expect_int({0, 1}, "fc_ bias mode") == 0  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        reader.read_float("fc_ multiplier")
    if weights[:2] != (num_inputs, num_outputs):
        raise DlibFormatError("fc_ weight shape", start, f"{weights} vs {num_inputs}x{num_outputs}")
    parts = _split(params, [weights, biases] if has_bias else [weights], start)
    bias = parts[1].reshape(-1) if has_bias else None
    return FcLayer(parts[0].reshape(num_inputs, num_outputs), bias)


def read_layer_details(reader: DlibReader) -> LayerDetails:
    """Read one computational layer's record (the ``details`` of a dlib add_layer)."""
    start = reader.offset
    name = reader.read_string("layer name")
    if name in ("con_4", "con_5"):
        return _read_con(reader, name, start)
    if name == "affine_":
        return _read_affine(reader, start)
    if name in ("max_pool_2", "avg_pool_2"):
        return _read_pool(reader, name)
    if name == "fc_2":
        return _read_fc(reader, start)
    if name in _PLAIN_LAYERS:
        return PlainLayer(name)
    raise DlibFormatError("a supported layer record", start, f"got {name!r}")


def skip_add_layer_state(reader: DlibReader, version: int, *, on_input: bool) -> None:
    """Skip the training state an add_layer writes after its details.

    ``version`` is the add_layer's own version number; the add_layer sitting directly on the
    input layer is a different class with its own versioning (``on_input``).
    """
    for _ in range(3):  # setup_called, gradient_input_is_stale, output/gradient disabled
        reader.read_bool("add_layer flag")
    reader.read_tensor("add_layer x_grad")
    reader.read_tensor("add_layer cached_output")
    if on_input or version >= 2:  # grad_final (input add_layer) or params_grad
        reader.read_tensor("add_layer gradient state")
    if on_input and version >= 3:
        reader.read_int("add_layer sample_expansion_factor")
