"""Rebuild dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) in ONNX.

The network is the one of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7/2 convolution stem,
max pooling, 14 residual units (29 convolutions, each followed by an affine layer, i.e. a
frozen batch norm), global average pooling and a 256 -> 128 fully connected layer without
bias.  The file stores only weights and per-layer settings; the wiring (which output a tag or
skip layer refers to) lives in the C++ type, so it is restated here and every layer record in
the file is checked against it.

Two dlib behaviours have to be reproduced exactly:

* input: each channel becomes ``(pixel - mean) / 256`` with the means stored in the file;
* ``add_prev`` adds tensors of different shapes by zero-padding the smaller one at the end of
  every dimension (extra channels, bottom rows, right columns).  That happens in every
  downsampling unit (the pooled shortcut has half the channels) and once spatially, where the
  stride-2 convolution yields 3x3 but the 2x2 average pool of the shortcut yields 4x4.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from facereel.core.faces.dlib_format import (
    AffineLayer,
    ConLayer,
    DlibFormatError,
    DlibReader,
    FcLayer,
    FloatArray,
    LayerDetails,
    PoolLayer,
    read_layer_details,
    skip_add_layer_state,
)

CHIP_SIZE = 150
EMBEDDING_SIZE = 128
INPUT_NAME = "chips"
OUTPUT_NAME = "embeddings"
OPSET = 17

# Residual units from the input upwards: (filters, downsamples).  alevel4 .. alevel0.
_UNITS: tuple[tuple[int, bool], ...] = (
    *[(32, False)] * 3,
    (64, True),
    *[(64, False)] * 3,
    (128, True),
    *[(128, False)] * 2,
    (256, True),
    *[(256, False)] * 2,
    (256, True),
)
_WRAPPERS = frozenset({"tag1", "tag2", "skip1"})


@dataclass(frozen=True)
class ConvParams:
    weights: FloatArray  # (out_channels, in_channels, kh, kw), cross-correlation like ONNX Conv
    bias: FloatArray  # (out_channels,)
    stride: int
    padding: int


@dataclass(frozen=True)
class AffineParams:
    gamma: FloatArray  # (channels,)
    beta: FloatArray  # (channels,)


@dataclass(frozen=True)
class ResnetWeights:
    """Everything the file holds that inference needs, layers in input-to-output order."""

    means: tuple[float, float, float]  # red, green, blue
    convs: tuple[ConvParams, ...]
    affines: tuple[AffineParams, ...]  # affines[i] follows convs[i]
    fc: FloatArray  # (256, 128): embeddings = pooled @ fc


# --------------------------------------------------------------------------------------------
# Reading


def _conv_sig(filters: int, kernel: int, stride: int, padding: int) -> str:
    return f"con {filters} {kernel}x{kernel} s{stride}x{stride} p{padding}x{padding}"


def _unit_layout(filters: int, down: bool) -> list[str]:
    stride, padding = (2, 0) if down else (1, 1)
    block = [_conv_sig(filters, 3, stride, padding), "affine mode0", "relu_"]
    block += [_conv_sig(filters, 3, 1, 1), "affine mode0"]
    if down:  # the shortcut: skip1 jumps back to tag1 and average-pools it
        return ["tag1", *block, "tag2", "skip1", "avg_pool 2x2 s2x2 p0x0", "add_prev_", "relu_"]
    return ["tag1", *block, "add_prev_", "relu_"]


def _layout() -> list[str]:
    """Every layer below the loss, from the input up: layer signatures and wrapper names."""
    layout = [_conv_sig(32, 7, 2, 0), "affine mode0", "relu_", "max_pool 3x3 s2x2 p0x0"]
    for filters, down in _UNITS:
        layout += _unit_layout(filters, down)
    return [*layout, "avg_pool 0x0 s1x1 p0x0", f"fc 256x{EMBEDDING_SIZE} nobias"]


def _signature(layer: LayerDetails) -> str:
    if isinstance(layer, ConLayer):
        _, _, kh, kw = layer.filters.shape
        (sy, sx), (py, px) = layer.stride, layer.padding
        bias = "" if layer.bias is not None else " nobias"
        return f"con {layer.filters.shape[0]} {kh}x{kw} s{sy}x{sx} p{py}x{px}{bias}"
    if isinstance(layer, AffineLayer):
        return f"affine mode{layer.mode}"
    if isinstance(layer, PoolLayer):
        (wy, wx), (sy, sx), (py, px) = layer.window, layer.stride, layer.padding
        return f"{layer.kind}_pool {wy}x{wx} s{sy}x{sx} p{py}x{px}"
    if isinstance(layer, FcLayer):
        rows, cols = layer.weights.shape
        return f"fc {rows}x{cols} {'bias' if layer.bias is not None else 'nobias'}"
    return layer.name


def _read_versions(reader: DlibReader, layout: list[str]) -> list[int]:
    """The add_layer/tag/skip headers, written top-down before any layer body.

    Returns the add_layer versions bottom-up, the order in which their bodies follow.
    """
    versions: list[int] = []
    for depth, entry in enumerate(reversed(layout)):
        if entry in _WRAPPERS:
            reader.expect_int({1}, f"{entry} layer version")
        elif depth == len(layout) - 1:  # the add_layer holding the input layer
            versions.append(reader.expect_int({2, 3}, "input add_layer version"))
        else:
            versions.append(reader.expect_int({1, 2}, f"add_layer version ({entry})"))
    return versions[::-1]


def _read_input_layer(reader: DlibReader) -> tuple[float, float, float]:
    reader.expect_string({"input_rgb_image_sized"}, "input layer name")
    means = tuple(reader.read_float(f"{c} channel mean") for c in ("red", "green", "blue"))
    for side in ("rows", "columns"):
        reader.expect_int({CHIP_SIZE}, f"input {side}")
    return means[0], means[1], means[2]


def _read_layers(reader: DlibReader, layout: list[str], versions: list[int]) -> list[LayerDetails]:
    expected = [entry for entry in layout if entry not in _WRAPPERS]
    layers: list[LayerDetails] = []
    for index, (signature, version) in enumerate(zip(expected, versions, strict=True)):
        start = reader.offset
        layer = read_layer_details(reader)
        if _signature(layer) != signature:
            raise DlibFormatError(f"layer {index} to be {signature!r}", start, _signature(layer))
        skip_add_layer_state(reader, version, on_input=index == 0)
        layers.append(layer)
    return layers


def _to_weights(means: tuple[float, float, float], layers: list[LayerDetails]) -> ResnetWeights:
    convs = [
        ConvParams(layer.filters, layer.bias, layer.stride[0], layer.padding[0])
        for layer in layers
        if isinstance(layer, ConLayer) and layer.bias is not None
    ]
    affines = [
        AffineParams(layer.gamma.reshape(-1), layer.beta.reshape(-1))
        for layer in layers
        if isinstance(layer, AffineLayer)
    ]
    fc = next(layer.weights for layer in layers if isinstance(layer, FcLayer))
    return ResnetWeights(means, tuple(convs), tuple(affines), fc)


def parse_resnet_weights(data: bytes) -> ResnetWeights:
    """Parse the bytes of dlib_face_recognition_resnet_model_v1.dat."""
    reader = DlibReader(data)
    reader.expect_int({1}, "add_loss_layer version")
    reader.expect_string({"loss_metric_2"}, "loss layer name")
    reader.read_float("loss_metric margin")  # training-only settings
    reader.read_float("loss_metric distance threshold")
    layout = _layout()
    versions = _read_versions(reader, layout)
    means = _read_input_layer(reader)
    layers = _read_layers(reader, layout, versions)
    reader.expect_end()
    return _to_weights(means, layers)


def read_resnet_weights(path: Path) -> ResnetWeights:
    """Read dlib's face-recognition ResNet weights file."""
    return parse_resnet_weights(Path(path).read_bytes())


# --------------------------------------------------------------------------------------------
# Building the ONNX graph

Shape = tuple[int, int, int]  # channels, rows, columns of one sample
_Pair = tuple[ConvParams, AffineParams]


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, hint: str, array: npt.NDArray[Any]) -> str:
        name = f"{hint}_{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str = "", **attrs: Any) -> str:
        output = output or f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output


def _conv(
    g: _Graph, x: str, shape: Shape, conv: ConvParams, affine: AffineParams, *, fold: bool
) -> tuple[str, Shape]:
    out_channels, in_channels, kh, kw = conv.weights.shape
    if in_channels != shape[0] or affine.gamma.shape != (out_channels,):
        raise ValueError(f"conv {conv.weights.shape} does not fit input {shape} / affine")
    weights, bias = conv.weights, conv.bias
    if fold:  # gamma * (w * x + b) + beta == (gamma * w) * x + (gamma * b + beta)
        gamma = affine.gamma.astype(np.float64)
        weights = (weights * gamma[:, None, None, None]).astype(np.float32)
        bias = (bias * gamma + affine.beta).astype(np.float32)
    s, p = conv.stride, conv.padding
    inputs = [x, g.constant("w", weights), g.constant("b", bias)]
    y = g.op("Conv", inputs, kernel_shape=[kh, kw], strides=[s, s], pads=[p, p, p, p])
    if not fold:
        per_channel = (1, out_channels, 1, 1)
        y = g.op("Mul", [y, g.constant("gamma", affine.gamma.reshape(per_channel))])
        y = g.op("Add", [y, g.constant("beta", affine.beta.reshape(per_channel))])
    rows, cols = ((n + 2 * p - k) // s + 1 for n, k in ((shape[1], kh), (shape[2], kw)))
    return y, (out_channels, rows, cols)


def _pad_to(g: _Graph, x: str, shape: Shape, target: Shape) -> str:
    """dlib's add_prev zero-fills the smaller operand at the end of each dimension."""
    if shape == target:
        return x
    ends = [t - s for s, t in zip(shape, target, strict=True)]
    pads = np.array([0, 0, 0, 0, 0, *ends], dtype=np.int64)
    return g.op("Pad", [x, g.constant("pads", pads)])


def _unit(
    g: _Graph, x: str, shape: Shape, params: list[_Pair], *, down: bool, fold: bool
) -> tuple[str, Shape]:
    y, mid = _conv(g, x, shape, *params[0], fold=fold)
    y, out = _conv(g, g.op("Relu", [y]), mid, *params[1], fold=fold)
    shortcut, short_shape = x, shape
    if down:
        shortcut = g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
        short_shape = (shape[0], (shape[1] - 2) // 2 + 1, (shape[2] - 2) // 2 + 1)
    target: Shape = (
        max(out[0], short_shape[0]),
        max(out[1], short_shape[1]),
        max(out[2], short_shape[2]),
    )
    total = g.op("Add", [_pad_to(g, y, out, target), _pad_to(g, shortcut, short_shape, target)])
    return g.op("Relu", [total]), target


def _input(g: _Graph, means: tuple[float, float, float]) -> str:
    """uint8 NHWC chips -> (pixel - mean) / 256 in NCHW, as dlib's input_rgb_image_sized."""
    x = g.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
    x = g.op("Sub", [x, g.constant("means", np.array(means, dtype=np.float32))])
    x = g.op("Div", [x, g.constant("scale", np.array(256.0, dtype=np.float32))])
    return g.op("Transpose", [x], perm=[0, 3, 1, 2])


def _check_counts(weights: ResnetWeights) -> None:
    expected = 1 + 2 * len(_UNITS)
    if len(weights.convs) != expected or len(weights.affines) != expected:
        raise ValueError(f"need {expected} conv+affine pairs, got {len(weights.convs)}")
    if weights.fc.shape != (256, EMBEDDING_SIZE):
        raise ValueError(f"fc matrix must be 256x{EMBEDDING_SIZE}, got {weights.fc.shape}")


def build_resnet_onnx(weights: ResnetWeights, *, fold_affine: bool = True) -> onnx.ModelProto:
    """The ONNX model: uint8 ``chips`` [N,150,150,3] RGB -> float32 ``embeddings`` [N,128].

    ``fold_affine`` merges each affine layer into the convolution before it (exact up to
    float rounding: the vectors still agree with dlib's to ~4e-7).  False keeps them as
    separate Mul/Add nodes like dlib; onnxruntime's default graph optimizations then perform
    the same fold when the session is created, so this mainly matters for other runtimes.
    """
    _check_counts(weights)
    g = _Graph()
    pairs: list[_Pair] = list(zip(weights.convs, weights.affines, strict=True))
    chip_shape = (3, CHIP_SIZE, CHIP_SIZE)
    x, shape = _conv(g, _input(g, weights.means), chip_shape, *pairs[0], fold=fold_affine)
    x = g.op("MaxPool", [g.op("Relu", [x])], kernel_shape=[3, 3], strides=[2, 2])
    shape = (shape[0], (shape[1] - 3) // 2 + 1, (shape[2] - 3) // 2 + 1)
    for index, (_, down) in enumerate(_UNITS):
        unit_pairs = pairs[1 + 2 * index : 3 + 2 * index]
        x, shape = _unit(g, x, shape, unit_pairs, down=down, fold=fold_affine)
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)
    g.op("MatMul", [pooled, g.constant("fc", weights.fc)], output=OUTPUT_NAME)
    chip_hwc = [CHIP_SIZE, CHIP_SIZE, 3]
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", *chip_hwc])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", EMBEDDING_SIZE])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # the IR version that introduced opset 17; older runtimes accept it
    model.producer_name = "facereel"
    onnx.checker.check_model(model)
    return model


def convert_resnet(path: Path) -> bytes:
    """dlib weights file -> serialized ONNX model."""
    data: bytes = build_resnet_onnx(read_resnet_weights(path)).SerializeToString()
    return data
