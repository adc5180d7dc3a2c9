"""RetinaFace: its graph is read safely from the PyPI package, and decoded as the package does."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
import skimage.data

from facereel.core.faces.base import BackendOptions
from facereel.core.faces.hog import HogDetector
from facereel.core.faces.retinaface import (
    RetinaFaceDetector,
    RetinaFaceOptions,
    decode_boxes,
    nms,
    priors,
    to_hog_geometry,
    turn,
)
from facereel.core.faces.retinaface_weights import (
    SHA256,
    check_model,
    package_weights_file,
    read_weights_literal,
    retinaface_model,
)
from facereel.core.types import ImageArray, box_iou
from facereel.errors import ModelNotAvailableError


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> RetinaFaceDetector:
    cache = tmp_path_factory.mktemp("models")
    found = RetinaFaceDetector(RetinaFaceOptions(), BackendOptions(cache_dir=cache))
    found.load()
    return found


@pytest.fixture(scope="module")
def clip_frame(clips: dict[str, Path]) -> ImageArray:
    """test_8's first frame (President Obama) at 640 x 360."""
    with av.open(str(clips["test_8"])) as container:
        frame = next(container.decode(video=0))
        small = frame.reformat(width=640, height=360, format="rgb24")
        return np.asarray(small.to_ndarray(), dtype=np.uint8)


def test_priors_follow_the_networks_layout() -> None:
    anchors = priors(641, 359)  # not a multiple of any stride: cells are rounded up
    counts = [-(-641 // s) * -(-359 // s) * 2 for s in (8, 16, 32)]
    assert len(anchors) == sum(counts)
    # cell by cell (row-major), both anchor sizes of a cell together
    assert anchors[:3].tolist() == [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]]
    columns = -(-641 // 8)
    assert anchors[2 * columns].tolist() == [4, 12, 16, 16]
    assert anchors[counts[0]].tolist() == [8, 8, 64, 64]
    assert anchors[-1].tolist() == [21 * 32 - 16, 12 * 32 - 16, 512, 512]


def test_offsets_decode_with_the_variances() -> None:
    anchor = np.array([[100, 50, 32, 32]], dtype=np.float32)
    assert decode_boxes(np.zeros((1, 4), np.float32), anchor).tolist() == [[84, 34, 116, 66]]
    moved = decode_boxes(np.array([[1.0, -1.0, np.log(2) / 0.2, 0.0]], np.float32), anchor)
    np.testing.assert_allclose(moved, [[100 + 3.2 - 32, 50 - 3.2 - 16, 100 + 3.2 + 32,
                                        50 - 3.2 + 16]], rtol=1e-5)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]],
                     dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.95], dtype=np.float32)
    assert nms(boxes, scores, 0.4) == [3, 2]
    assert nms(boxes, scores, 0.99) == [3, 1, 0, 2]


def test_the_package_graph_is_read_without_importing_the_package(
        tmp_path: Path, detector: RetinaFaceDetector) -> None:
    import sys

    data = read_weights_literal(package_weights_file())
    assert hashlib.sha256(data).hexdigest() == SHA256
    assert "retinaface" not in sys.modules and "cv2" not in sys.modules
    cached = list((detector._shared.cache_dir or tmp_path).glob("retinaface-*.onnx"))
    assert len(cached) == 1 and cached[0].read_bytes() == data


def test_a_tampered_graph_is_refused(tmp_path: Path) -> None:
    data = bytearray(read_weights_literal(package_weights_file()))
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "weights.py"
    tampered.write_text(f"WEIGHTS = {bytes(data)!r}\n")
    with pytest.raises(ModelNotAvailableError, match="expected RetinaFace graph"):
        check_model(read_weights_literal(tampered), tampered)
    onnx = tmp_path / "other.onnx"
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelNotAvailableError, match="sha256"):
        retinaface_model(onnx, None)
    # a cache file that changed after it was written is not trusted either
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"retinaface-mnet025-{SHA256[:16]}.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelNotAvailableError):
        retinaface_model(None, cache)


def test_code_in_a_weights_file_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "weights.py"
    source.write_text(f"WEIGHTS = open({str(marker)!r}, 'w').write('x') and b''\n")
    with pytest.raises(ModelNotAvailableError, match="literal"):
        read_weights_literal(source)
    assert not marker.exists()


def test_one_face_on_a_clip_frame_and_on_the_astronaut(detector: RetinaFaceDetector,
                                                       clip_frame: ImageArray) -> None:
    for image in (clip_frame, np.asarray(skimage.data.astronaut(),  # type: ignore[no-untyped-call]
                   dtype=np.uint8)):
        boxes, scores, landmarks = detector.raw(image)
        confident = scores >= detector.presence_score
        assert confident.sum() == 1, scores
        box, points = boxes[confident][0], landmarks[confident][0]
        # the five points lie inside the face box: eyes above the nose above the mouth
        assert np.all((points >= box[:2]) & (points <= box[2:]))
        assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]
        assert max(points[0, 1], points[1, 1]) < points[2, 1] < min(points[3, 1], points[4, 1])
        assert abs(turn(points)) < 0.3


def test_boxes_are_mapped_to_hogs_geometry(detector: RetinaFaceDetector,
                                           clip_frame: ImageArray) -> None:
    hog = HogDetector()
    astronaut = np.asarray(skimage.data.astronaut(),  # type: ignore[no-untyped-call]
                   dtype=np.uint8)
    for image in (clip_frame, astronaut):
        gray = np.asarray(image.mean(axis=2), dtype=np.uint8)
        hog_face = max(hog.detect(gray), key=lambda d: d.score)
        (face,) = [d for d in detector.detect(image) if d.score >= detector.presence_score]
        raw_boxes, _, _ = detector.raw(image)
        left, top, right, bottom = (int(v) for v in raw_boxes[0])
        raw = (left, top, right, bottom)
        # closer to HOG's box than RetinaFace's own (the aligner's landmarks are what matter;
        # tests/integration/test_detectors.py checks the embeddings)
        assert box_iou(face.box, hog_face.box) > max(0.65, box_iou(raw, hog_face.box)), raw
        mapped = to_hog_geometry(raw_boxes[0])
        assert mapped[2] - mapped[0] == pytest.approx(mapped[3] - mapped[1])
