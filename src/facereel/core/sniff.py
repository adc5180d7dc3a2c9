"""Tell videos from images from everything else by content, and check the extension agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from facereel.errors import MediaError

MediaKind = Literal["video", "image"]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".3gp",
     ".mpg", ".mpeg", ".ogv", ".wmv"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"BM", "BMP image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
)
_VIDEO_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM video"),
    (b"FLV", "FLV video"),
    (b"OggS", "Ogg media"),
    (b"\x00\x00\x01\xba", "MPEG program stream"),
    (b"\x30\x26\xb2\x75", "ASF/WMV video"),
)
_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1")


def sniff_bytes(head: bytes) -> tuple[MediaKind | None, str]:  # noqa: PLR0911 - a lookup
    """(kind, description) from a file's first bytes; kind None means not media we read."""
    for magic, what in _IMAGE_MAGIC:
        if head.startswith(magic):
            return "image", what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "WebP image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "AVI video"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None, f"{brand.decode('ascii', 'replace').upper()} image (not supported)"
        return "video", "MP4/QuickTime video"
    for magic, what in _VIDEO_MAGIC:
        if head.startswith(magic):
            return "video", what
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return "video", "MPEG transport stream"
    return None, "not a video or image"


def classify(path: Path) -> MediaKind:
    """The kind of media at `path`; raises MediaError with a code that says what is wrong."""
    if not path.exists():
        raise MediaError(f"{path.name}: file not found ({path})", code="not_found")
    if path.is_dir():
        raise MediaError(f"{path.name}: is a directory, not a file", code="not_media")
    suffix = path.suffix.lower()
    if suffix not in MEDIA_EXTENSIONS:
        raise MediaError(
            f"{path.name}: extension '{suffix or '(none)'}' is not a video or image type facereel "
            f"reads (videos: {', '.join(sorted(VIDEO_EXTENSIONS))}; images: "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))})",
            code="unsupported_type",
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise MediaError(f"{path.name}: cannot read file: {exc.strerror}", "unreadable") from exc
    if not head:
        raise MediaError(f"{path.name}: file is empty (0 bytes)", code="empty_file")
    kind, what = sniff_bytes(head)
    if kind is None:
        raise MediaError(f"{path.name}: content is {what}", code="not_media")
    claimed: MediaKind = "video" if suffix in VIDEO_EXTENSIONS else "image"
    if kind != claimed:
        raise MediaError(
            f"{path.name}: holds a {what} but its extension '{suffix}' says {claimed}; "
            f"rename it with the right extension",
            code="wrong_extension",
        )
    return kind
