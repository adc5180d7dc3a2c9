"""The one-name job: `--sampling first` answers from the first frame alone, and a track's first
shot is embedded together with its mirror image (core/shots.py), which brings single frames
nearer their person."""

from __future__ import annotations

import io
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image

from facereel.core.media import ImagePicture, VideoSource
from facereel.core.recognize import Recognizer
from facereel.core.sampling import parse_sampling
from facereel.core.shots import capture
from tests.conftest import CLIP_PEOPLE


def test_first_mode_decodes_one_frame_and_names_every_clip(recognizer: Recognizer,
                                                           clips: dict[str, Path]) -> None:
    options = replace(recognizer.options, sampling=parse_sampling("first"))
    first = Recognizer(recognizer.models, recognizer.gallery, options)
    for clip, path in clips.items():
        result = first.recognize(path)
        assert result.stats["frames_decoded"] == 1, clip
        assert [p.person for p in result.people] == [CLIP_PEOPLE[clip]], (clip, result.to_dict())


def test_the_first_frame_is_the_one_a_full_decode_gives(clips: dict[str, Path]) -> None:
    for path in clips.values():
        with VideoSource(path) as video:
            alone = next(video.pictures("first"))
        with VideoSource(path) as video:
            decoded = next(video.pictures("all"))
        assert alone.time_s == decoded.time_s
        assert np.array_equal(alone.rgb(), decoded.rgb())


def _half_size_jpeg(rgb: np.ndarray) -> ImagePicture:
    image = Image.fromarray(rgb)
    image = image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=20)
    return ImagePicture(np.asarray(Image.open(buffer).convert("RGB"), dtype=np.uint8))


def test_a_mirrored_shot_is_nearer_its_person(recognizer: Recognizer,
                                              clips: dict[str, Path]) -> None:
    models, gallery = recognizer.models, recognizer.gallery
    column = gallery.people.index(CLIP_PEOPLE["test_2"])
    gains = []
    with VideoSource(clips["test_2"]) as video:  # Mr Bean grimacing, eyes shut at first
        for picture in islice(video.pictures("all"), 12):
            small = _half_size_jpeg(picture.rgb())  # compressed, as re-encodings are
            face = max(models.detect(small), key=lambda d: d.box[2] - d.box[0])
            plain = capture(small.rgb(), face.box, picture.time_s)
            both = capture(small.rgb(), face.box, picture.time_s, mirror=True)
            vectors = models.embed_shots([plain, both])
            chip = models.aligner.chips(plain.image, [plain.face])[0]
            views = models.embedder.embed([chip, np.ascontiguousarray(chip[:, ::-1])])
            assert np.allclose(vectors[1], views.mean(axis=0), atol=1e-5)
            assert np.allclose(vectors[0], views[0], atol=1e-5)
            distances = gallery.person_distances(vectors)[:, column]
            gains.append(float(distances[0] - distances[1]))
    # measured: 0.006-0.038 nearer on every one of these frames, 0.024 on average
    assert min(gains) > -0.01, gains
    assert float(np.mean(gains)) > 0.01, gains
