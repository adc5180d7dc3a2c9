"""The ONNX rebuild of dlib's face-recognition ResNet reproduces dlib's vectors on real faces."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import dlib
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
import skimage.data

from facereel.core.faces.dlib_format import DlibFormatError, DlibReader
from facereel.core.faces.resnet_onnx import convert_resnet, read_resnet_weights

# dlib and onnxruntime both compute in float32; the measured gap is ~4e-7.
TOLERANCE = 1e-4
CHIP_PADDING = 0.25  # dlib's compute_face_descriptor default

Image = npt.NDArray[np.uint8]
Vector = npt.NDArray[np.float64]


def _models_dir() -> Path:
    # find_spec locates the package without running its __init__ (which needs pkg_resources).
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@dataclass(frozen=True)
class Face:
    chip: Image  # 150x150 aligned RGB chip, as dlib extracts it
    reference: Vector  # dlib's own descriptor for this face


@dataclass(frozen=True)
class DlibModels:
    detector: Any
    predictor: Any
    recognizer: Any

    def landmarks(self, image: Image) -> list[Any]:
        return [self.predictor(image, box) for box in self.detector(image, 0)]

    def faces(self, image: Image) -> list[Face]:
        return [
            Face(
                _chip(image, shape, CHIP_PADDING),
                np.asarray(self.recognizer.compute_face_descriptor(image, shape, 0, CHIP_PADDING)),
            )
            for shape in self.landmarks(image)
        ]


def _chip(image: Image, landmarks: Any, padding: float) -> Image:
    return np.asarray(dlib.get_face_chip(image, landmarks, size=150, padding=padding))


@pytest.fixture(scope="module")
def resnet_path() -> Path:
    return _models_dir() / "dlib_face_recognition_resnet_model_v1.dat"


@pytest.fixture(scope="module")
def models(resnet_path: Path) -> DlibModels:
    predictor = dlib.shape_predictor(str(_models_dir() / "shape_predictor_5_face_landmarks.dat"))
    return DlibModels(
        dlib.get_frontal_face_detector(),
        predictor,
        dlib.face_recognition_model_v1(str(resnet_path)),
    )


@pytest.fixture(scope="module")
def session(resnet_path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        convert_resnet(resnet_path), options, providers=["CPUExecutionProvider"]
    )


def _embed(session: ort.InferenceSession, chips: list[Image]) -> Vector:
    (embeddings,) = session.run(["embeddings"], {"chips": np.stack(chips)})
    return np.asarray(embeddings, dtype=np.float64)


def _astronaut() -> Image:
    """skimage's astronaut photo: a real face that ships with scikit-image."""
    return np.ascontiguousarray(skimage.data.astronaut())  # type: ignore[no-untyped-call]


def _first_frame(path: Path) -> Image:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return np.ascontiguousarray(frame)


def _max_error(session: ort.InferenceSession, faces: list[Face]) -> float:
    ours = _embed(session, [face.chip for face in faces])
    return float(np.abs(ours - np.stack([face.reference for face in faces])).max())


# --------------------------------------------------------------------------------------------
# Parser


def test_reader_primitives() -> None:
    # 0, 300, -5; 0.04 as the file stores it (mantissa 10737418, exponent -28); +inf;
    # zero as dlib writes it (mantissa 0, exponent 11); True; "ab".
    data = bytes.fromhex("0100 022c01 8105 030ad7a3 811c 0100 02007d 0100 010b") + b"1\x01\x02ab"
    reader = DlibReader(data)
    assert [reader.read_int() for _ in range(3)] == [0, 300, -5]
    assert reader.read_float() == pytest.approx(0.04)
    assert reader.read_float() == float("inf")
    assert reader.read_float() == 0.0
    assert reader.read_bool()
    assert reader.read_string() == "ab"
    reader.expect_end()
    with pytest.raises(DlibFormatError, match="expected flag at byte offset 0: got byte 0x78"):
        DlibReader(b"x").read_bool("flag")


def test_reads_the_network(resnet_path: Path) -> None:
    weights = read_resnet_weights(resnet_path)
    assert weights.means == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert len(weights.convs) == len(weights.affines) == 29
    assert weights.convs[0].weights.shape == (32, 3, 7, 7)
    assert (weights.convs[0].stride, weights.convs[0].padding) == (2, 0)
    assert weights.convs[-1].weights.shape == (256, 256, 3, 3)
    assert weights.fc.shape == (256, 128)


def _truncated(data: bytes) -> bytes:
    return data[:100_000]


def _garbage(data: bytes) -> bytes:
    return np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()


def _trailing(data: bytes) -> bytes:
    return data + b"\x00"


def _empty(data: bytes) -> bytes:
    return b""


def _bad_layer(data: bytes) -> bytes:
    # The first layer record names itself "con_4"; misspell it.
    at = data.index(b"con_4")
    return data[:at] + b"con_9" + data[at + 5 :]


@pytest.mark.parametrize(
    "corrupt",
    [_truncated, _garbage, _trailing, _bad_layer, _empty],
    ids=["truncated", "garbage", "trailing-byte", "unknown-layer", "empty"],
)
def test_rejects_damaged_files(
    tmp_path: Path, resnet_path: Path, corrupt: Callable[[bytes], bytes]
) -> None:
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(corrupt(resnet_path.read_bytes()))
    with pytest.raises(DlibFormatError, match=r"expected .* at byte offset \d+"):
        read_resnet_weights(damaged)


# --------------------------------------------------------------------------------------------
# Equality with dlib


def test_model_interface(session: ort.InferenceSession) -> None:
    (chips,) = session.get_inputs()
    (embeddings,) = session.get_outputs()
    assert (chips.name, chips.type, chips.shape[1:]) == ("chips", "tensor(uint8)", [150, 150, 3])
    assert (embeddings.name, embeddings.type) == ("embeddings", "tensor(float)")
    assert embeddings.shape[1:] == [128]


def test_matches_dlib_on_astronaut(session: ort.InferenceSession, models: DlibModels) -> None:
    faces = models.faces(_astronaut())
    assert faces, "dlib found no face in skimage's astronaut photo"
    assert _max_error(session, faces) < TOLERANCE


@pytest.fixture(scope="module")
def clip_faces(clips: dict[str, Path], models: DlibModels) -> list[Face]:
    return [face for path in clips.values() for face in models.faces(_first_frame(path))]


def test_matches_dlib_on_clip_frames(session: ort.InferenceSession, clip_faces: list[Face]) -> None:
    assert len(clip_faces) >= 3, "expected faces in at least three clips' first frames"
    assert _max_error(session, clip_faces) < TOLERANCE


def _astronaut_chips(models: DlibModels) -> Iterator[Image]:
    image = _astronaut()
    for landmarks in models.landmarks(image):
        for padding in (0.1, 0.25, 0.4):
            chip = _chip(image, landmarks, padding)
            yield chip
            yield np.ascontiguousarray(chip[:, ::-1])  # mirrored: another plausible chip


def test_batch_equals_one_at_a_time(session: ort.InferenceSession, models: DlibModels) -> None:
    chips = list(_astronaut_chips(models))
    assert len(chips) >= 6
    batched = _embed(session, chips)
    single = np.concatenate([_embed(session, [chip]) for chip in chips])
    assert batched.shape == (len(chips), 128)
    assert float(np.abs(batched - single).max()) < 1e-5
