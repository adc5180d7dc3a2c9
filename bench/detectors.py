"""Which face detector, at which scale: per-frame time and first-frame hit rate.

For each detector and detection size (short side of the frame the detector sees) this measures,
on one thread:
- the time of one detection over a whole frame (median over frames every ~0.25 s of the 8
  real clips; the frame is already scaled, as a video's frames are by the decoder);
- on the first frame of the 8 clips and of the 100 re-encodings (`make_videos.py`), whether the
  clip's person was found: a confident detection (score >= the detector's presence score) whose
  embedding's nearest gallery person is the clip's; and how many other confident detections
  the frame gave (strays: another person, a face too damaged to identify, or not a face);
- the smallest faces found: each clip's face (frame 0; test_5: 30) pasted, downscaled, into a
  1920 x 1080 canvas at 5-12% of its short side, and how many of the 8 are found.

    python bench/detectors.py [--videos bench/out/videos] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common import CLIP_NAMES, CLIP_PERSON, REPO_ROOT, clip_path, data_dir, read_workload
from facereel.core.faces import FaceConfig, FaceModels
from facereel.core.gallery import Gallery
from facereel.core.gallery_io import read_gallery_file
from facereel.core.media import ImagePicture, Picture, VideoSource

CANDIDATES = (("hog", 360), ("hog", 480), ("retinaface", 240), ("retinaface", 288),
              ("retinaface", 360), ("retinaface", 480))
TIMING_EVERY_S = 0.25
SMALL_FRACTIONS = (0.05, 0.06, 0.07, 0.08, 0.10, 0.12)
FACE_FRAME = {"test_5": 30}  # test_5 opens on a shot HOG finds no face in


@dataclass
class Row:
    detector: str
    size: int
    ms_per_frame: float
    clips_found: int
    clips: int
    videos_found: int
    videos: int
    strays: int
    missed: list[str]
    small_found: dict[float, int]


def first_picture(path: Path) -> Picture:
    with VideoSource(path) as video:
        return next(iter(video.pictures("all")))


def face_picture(clip: str) -> ImagePicture:
    with VideoSource(clip_path(clip)) as video:
        for index, picture in enumerate(video.pictures("all")):
            if index == FACE_FRAME.get(clip, 0):
                return ImagePicture(picture.rgb())
    raise ValueError(f"{clip} is too short")


def timing_pictures() -> list[Picture]:
    pictures: list[Picture] = []
    for clip in CLIP_NAMES:
        with VideoSource(clip_path(clip)) as video:
            last = -1.0
            for picture in video.pictures("all"):
                if picture.time_s - last >= TIMING_EVERY_S:
                    pictures.append(picture)
                    last = picture.time_s
    return pictures


def frame_ms(models: FaceModels, pictures: list[Picture]) -> float:
    detector = models.detector
    times = []
    for picture in pictures:
        scale = models.detection_scale(picture.width, picture.height)
        image = picture.gray(scale) if detector.input == "gray" else picture.color(scale)
        started = time.perf_counter()
        detector.detect(image)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def small_faces(models: FaceModels, faces: list[ImagePicture]) -> dict[float, int]:
    """How many of the clips' faces are found when they are `fraction` of the short side."""
    found = dict.fromkeys(SMALL_FRACTIONS, 0)
    for picture in faces:
        boxes = [d.box for d in models.detect(picture) if d.score >= models.presence_score]
        if not boxes:
            continue
        width = boxes[0][2] - boxes[0][0]
        for fraction in SMALL_FRACTIONS:
            factor = fraction * 1080 / width
            size = (max(1, round(picture.width * factor)), max(1, round(picture.height * factor)))
            canvas = Image.new("RGB", (1920, 1080), (90, 100, 110))
            canvas.paste(Image.fromarray(picture.rgb()).resize(size, Image.Resampling.LANCZOS),
                         (100, 100))
            small = ImagePicture(np.asarray(canvas, dtype=np.uint8))
            found[fraction] += any(d.score >= models.presence_score for d in models.detect(small))
    return found


def first_frame(models: FaceModels, gallery: Gallery, picture: Picture,
                person: str) -> tuple[bool, int]:
    """(whether `person` was found, how many other confident detections there were)."""
    faces = [d for d in models.detect(picture) if d.score >= models.presence_score]
    if not faces:
        return False, 0
    vectors = models.embed(picture.rgb(), [d.box for d in faces])
    nearest = np.argmin(gallery.person_distances(vectors), axis=1)
    found = bool(np.any(nearest == gallery.people.index(person)))
    return found, len(faces) - (1 if found else 0)


def measure(detector: str, size: int, gallery: Gallery, timing: list[Picture],
            firsts: dict[str, tuple[Picture, str]], clips: set[str],
            faces: list[ImagePicture]) -> Row:
    models = FaceModels(FaceConfig(detector=detector, detect_size=size)).load()
    models.detect(timing[0])  # warm the session up
    row = Row(detector, size, round(frame_ms(models, timing), 1), 0, 0, 0, 0, 0, [],
              small_faces(models, faces))
    for name, (picture, person) in firsts.items():
        found, strays = first_frame(models, gallery, picture, person)
        row.strays += strays
        if name in clips:
            row.clips += 1
            row.clips_found += found
        else:
            row.videos += 1
            row.videos_found += found
        if not found:
            row.missed.append(name)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--videos", type=Path, default=REPO_ROOT / "bench" / "out" / "videos")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    args = parser.parse_args()
    if not (args.videos / "manifest.json").is_file():
        raise SystemExit(f"no re-encodings in {args.videos}: run bench/make_videos.py first")
    gallery = read_gallery_file(data_dir() / "encoding", "dlib-resnet", 128)
    firsts = {clip: (first_picture(clip_path(clip)), CLIP_PERSON[clip]) for clip in CLIP_NAMES}
    for video, clip in read_workload().items():
        firsts[video] = (first_picture(args.videos / video), CLIP_PERSON[clip])
    timing = timing_pictures()
    faces = [face_picture(clip) for clip in CLIP_NAMES]
    rows = [measure(d, s, gallery, timing, firsts, set(CLIP_NAMES), faces)
            for d, s in CANDIDATES]
    print(f"{len(timing)} timed frames; first frames of {len(CLIP_NAMES)} clips and "
          f"{len(firsts) - len(CLIP_NAMES)} re-encodings")
    print("| detector | short side | ms/frame | clips found | re-encodings found | strays | "
          "smallest face found in 8/8 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        smallest = min((f for f, n in r.small_found.items() if n == len(faces)), default=None)
        print(f"| {r.detector} | {r.size} | {r.ms_per_frame} | {r.clips_found}/{r.clips} | "
              f"{r.videos_found}/{r.videos} | {r.strays} | "
              f"{'-' if smallest is None else f'{smallest:.0%}'} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detectors.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))


if __name__ == "__main__":
    main()
