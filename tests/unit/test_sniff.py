from __future__ import annotations

from pathlib import Path

import pytest

from facereel.core.sniff import classify, sniff_bytes
from facereel.errors import MediaError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 20


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (PNG, "image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 10, "image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image"),
        (MP4, "video"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 10, "video"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video"),
        (b"hello, world", None),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 8, None),
    ],
)
def test_sniff_bytes_tells_media_by_content(head: bytes, kind: str | None) -> None:
    assert sniff_bytes(head)[0] == kind


def _classify_error(path: Path) -> MediaError:
    with pytest.raises(MediaError) as caught:
        classify(path)
    return caught.value


def test_classify_reports_each_problem_with_its_own_code(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    renamed = tmp_path / "photo.mp4"
    renamed.write_bytes(PNG)
    unsupported = tmp_path / "notes.txt"
    unsupported.write_text("hello")

    assert _classify_error(empty).code == "empty_file"
    assert _classify_error(text).code == "not_media"
    error = _classify_error(renamed)
    assert error.code == "wrong_extension"
    assert "PNG image" in error.message and "rename" in error.message
    assert _classify_error(unsupported).code == "unsupported_type"
    assert _classify_error(tmp_path / "missing.mp4").code == "not_found"
    assert _classify_error(tmp_path).code in ("not_media", "unsupported_type")


def test_classify_accepts_matching_content(tmp_path: Path) -> None:
    video = tmp_path / "a.MP4"
    video.write_bytes(MP4)
    image = tmp_path / "b.png"
    image.write_bytes(PNG)
    assert classify(video) == "video"
    assert classify(image) == "image"
