"""Issue 9's accuracy checks, end to end through the recognizer's result document: every face
of a group still is found (enrolled people named, a stranger counted as unknown), and a face
of ~8% of the frame's short side in a video is found and named for as long as it is there.
(People cut together one after another: tests/integration/test_cuts.py.)"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from facereel.core.media import ImagePicture
from facereel.core.recognize import Recognizer
from tests.conftest import CLIP_PEOPLE
from tests.support.media_factory import Writer, read_frames

FRAME = {"test_5": 30}  # test_5 opens on a shot where Vin Diesel is turned away
TOLERANCE_MS = 500


def _still(path: Path, index: int) -> np.ndarray:
    return next(rgb for number, (_, rgb) in enumerate(read_frames(path)) if number == index)


def test_every_face_of_a_group_still_is_found(recognizer: Recognizer,
                                              clips: dict[str, Path]) -> None:
    names = ["test_1", "test_5", "test_7", "test_8"]
    tiles = [Image.fromarray(_still(clips[n], FRAME.get(n, 0))) for n in names]
    tiles.append(Image.fromarray(np.asarray(skimage.data.astronaut(),  # type: ignore[no-untyped-call]
                                            dtype=np.uint8)))  # a stranger
    tiles = [t.resize((round(t.width * 400 / t.height), 400)) for t in tiles]
    canvas = Image.new("RGB", (sum(t.width for t in tiles[:3]), 800), (90, 100, 110))
    for number, tile in enumerate(tiles):  # two rows: three tiles, then two
        row = number // 3
        left = sum(t.width for t in tiles[row * 3:number])
        canvas.paste(tile, (left, row * 400))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    result = recognizer.recognize_image_bytes(buffer.getvalue(), "group.jpg")
    assert result.status == "ok", result.to_dict()
    assert sorted(p.person for p in result.people) == sorted(CLIP_PEOPLE[n] for n in names)
    assert result.unknown_faces == 1, result.to_dict()


def test_a_face_of_8_percent_of_the_short_side_is_found(recognizer: Recognizer,
                                                        clips: dict[str, Path],
                                                        tmp_path: Path) -> None:
    frames = list(read_frames(clips["test_8"], seconds=1.5))
    picture = ImagePicture(frames[0][1])
    face = max(recognizer.models.detect(picture), key=lambda d: d.box[2] - d.box[0]).box
    factor = 0.08 * 720 / (face[2] - face[0])  # Obama's face: 8% of the 720 rows
    small = (round(picture.width * factor), round(picture.height * factor))
    video = tmp_path / "small.mp4"
    background = np.full((720, 1280, 3), (90, 100, 110), dtype=np.uint8)
    with Writer(video, 1280, 720) as writer:
        for time_s, rgb in frames:
            canvas = Image.fromarray(background)
            canvas.paste(Image.fromarray(rgb).resize(small, Image.Resampling.LANCZOS), (900, 80))
            writer.write(np.asarray(canvas), time_s)
    result = recognizer.recognize(video)
    assert [p.person for p in result.people] == ["president_obama"], result.to_dict()
    [seen] = result.people[0].appearances
    assert seen.start_ms <= TOLERANCE_MS
    assert result.duration_ms - seen.end_ms <= TOLERANCE_MS + 100  # the last frame lasts 42 ms
    width = result.people[0].box[2] - result.people[0].box[0]
    assert 0.06 * 720 < width < 0.1 * 720, result.people[0].box
