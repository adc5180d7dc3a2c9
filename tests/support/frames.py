"""Still frames cut from the real clips, with who is in each (for the image tier's tests)."""

from __future__ import annotations

from pathlib import Path

import av

EVERY = 10  # keep one decoded frame in ten
# test_5 opens on a face-free shot: its person is on screen from about frame 30 on.
FACE_FROM_FRAME = {"test_5": 30}


def cut_frames(clips: dict[str, Path], people: dict[str, str], folder: Path,
               per_clip: int = 6) -> list[tuple[Path, str]]:
    """Up to `per_clip` JPEG frames of each clip in `people`, with the expected name."""
    folder.mkdir(parents=True, exist_ok=True)
    frames: list[tuple[Path, str]] = []
    for stem, person in sorted(people.items()):
        kept = 0
        with av.open(str(clips[stem])) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % EVERY or index < FACE_FROM_FRAME.get(stem, 0):
                    continue
                path = folder / f"{stem}-frame{index:04d}.jpg"
                frame.to_image().save(path, quality=90)  # type: ignore[no-untyped-call]
                frames.append((path, person))
                kept += 1
                if kept == per_clip:
                    break
    return frames
