"""Reference implementation of the original CSE546 coursework pipeline: facereel's baseline.

Per video, exactly what the coursework's Lambda handler did, minus the cloud plumbing:
`ffmpeg -i VIDEO -vframes 1 frame.jpg`, load the JPEG as RGB, dlib's HOG frontal face detector
with one upsampling on the full-resolution frame, landmarks, dlib's ResNet face descriptor,
then the nearest gallery face in `encoding` within face_recognition's default tolerance 0.6.
The first face found decides; no face means no prediction. Two worker processes, models
loaded once per worker.

    python bench/reference.py VIDEO_DIR --out predictions.json [--workers 2]
        [--mapping MAPPING --students STUDENT_DATA.json] [--landmarks 68|5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import re
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import dlib
import imageio_ffmpeg
import numpy as np
from PIL import Image

from common import data_dir, grade

TOLERANCE = 0.6  # face_recognition.compare_faces' default
LANDMARK_FILES = {
    68: "shape_predictor_68_face_landmarks.dat",
    5: "shape_predictor_5_face_landmarks.dat",
}

# Per-worker state, filled once by _init_worker (dlib models cannot be pickled to workers).
_WORKER: dict[str, Any] = {}


def models_dir() -> Path:
    """face_recognition_models' data folder, found without importing the package.

    Its __init__ imports pkg_resources, which this environment does not have.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face_recognition_models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def load_gallery(path: Path) -> tuple[list[str], np.ndarray[Any, Any]]:
    """The coursework `encoding` pickle as (names, N x 128 float64 matrix)."""
    with path.open("rb") as handle:
        data = pickle.load(handle)
    return list(data["name"]), np.asarray(data["encoding"], dtype=np.float64)


def _init_worker(gallery_path: Path, landmarks: int) -> None:
    """Load dlib's detector, landmark and descriptor models and the gallery in this worker."""
    folder = models_dir()
    _WORKER["detector"] = dlib.get_frontal_face_detector()
    _WORKER["predictor"] = dlib.shape_predictor(str(folder / LANDMARK_FILES[landmarks]))
    _WORKER["encoder"] = dlib.face_recognition_model_v1(
        str(folder / "dlib_face_recognition_resnet_model_v1.dat")
    )
    _WORKER["names"], _WORKER["gallery"] = load_gallery(gallery_path)


def extract_first_frame(video: Path, workdir: Path) -> Path | None:
    """`ffmpeg -i VIDEO -vframes 1 frame.jpg`, as the handler did; None if ffmpeg made nothing."""
    target = workdir / "frame.jpg"
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"]
    command += ["-i", str(video), "-vframes", "1", str(target)]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    return target if target.is_file() else None


def recognise(image: np.ndarray[Any, Any]) -> str | None:
    """Name of the first detected face's nearest gallery entry, or None (no face / too far)."""
    faces = _WORKER["detector"](image, 1)
    if len(faces) == 0:
        return None
    shape = _WORKER["predictor"](image, faces[0])
    descriptor = np.asarray(_WORKER["encoder"].compute_face_descriptor(image, shape))
    distances = np.linalg.norm(_WORKER["gallery"] - descriptor, axis=1)
    best = int(np.argmin(distances))
    return str(_WORKER["names"][best]) if distances[best] <= TOLERANCE else None


def process_video(video: Path) -> tuple[str, str | None]:
    """One video end to end in a private temp dir: (file name, predicted person or None)."""
    with tempfile.TemporaryDirectory(prefix="facereel-ref-") as workdir:
        frame_path = extract_first_frame(video, Path(workdir))
        if frame_path is None:
            return video.name, None
        image = np.asarray(Image.open(frame_path).convert("RGB"))
        return video.name, recognise(image)


def _natural_key(path: Path) -> list[int | str]:
    """Sort test_2 before test_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def run_reference(
    video_dir: Path,
    workers: int = 2,
    gallery_path: Path | None = None,
    landmarks: int = 68,
) -> dict[str, str | None]:
    """Predict every .mp4 in `video_dir` with a pool of `workers`: {file name: person or None}."""
    videos = sorted(Path(video_dir).glob("*.mp4"), key=_natural_key)
    init_args = (gallery_path or data_dir() / "encoding", landmarks)
    with Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        results = dict(pool.imap_unordered(process_video, videos, chunksize=1))
    return {video.name: results[video.name] for video in videos}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="CSE546 coursework reference pipeline")
    parser.add_argument("video_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="predictions JSON to write")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--encoding", type=Path, default=None, help="gallery pickle")
    parser.add_argument("--mapping", type=Path, default=None)
    parser.add_argument("--students", type=Path, default=None)
    parser.add_argument(
        "--landmarks",
        type=int,
        choices=sorted(LANDMARK_FILES),
        default=68,
        help="landmark model before the descriptor (face_recognition's own default is 5)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: predict, write JSON, print time and (optionally) the grade."""
    args = _parse_args(argv)
    start = time.perf_counter()
    predictions = run_reference(args.video_dir, args.workers, args.encoding, args.landmarks)
    elapsed = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(predictions, indent=1) + "\n")
    count = len(predictions)
    print(f"{count} videos in {elapsed:.2f} s ({count / elapsed:.2f} videos/s)")
    if args.mapping and args.students:
        right, total = grade(predictions, args.mapping, args.students)
        print(f"grade: {right}/{total} right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
