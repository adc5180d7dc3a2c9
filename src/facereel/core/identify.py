"""Identification: embed the shots an analysis took, in batches, into their tracks."""

from __future__ import annotations

import io

from PIL import Image

from facereel.core.faces import FaceModels
from facereel.core.shots import FaceShot
from facereel.core.tracking import Track
from facereel.core.types import ImageArray

EMBED_BATCH = 16  # shots embedded together (batches run ~20% faster than single shots)
FACE_JPEG_QUALITY = 90


def jpeg(image: ImageArray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=FACE_JPEG_QUALITY)
    return buffer.getvalue()


class EmbeddingSink:
    """A ShotSink that embeds shots in the same process (the one-shot path). With
    `keep_faces`, each track's first shot is also kept as a JPEG (`faces`), for results that
    show the face they are about."""

    def __init__(self, models: FaceModels, batch: int = EMBED_BATCH,
                 keep_faces: bool = False) -> None:
        self.models = models
        self.batch = batch
        self.keep_faces = keep_faces
        self.embedded = 0
        self.faces: dict[int, bytes] = {}
        self._pending: list[tuple[Track, FaceShot]] = []

    def add(self, track: Track, shot: FaceShot) -> None:
        if self.keep_faces and track.id not in self.faces:
            self.faces[track.id] = jpeg(shot.image)
        self._pending.append((track, shot))
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        vectors = self.models.embed_shots([shot for _, shot in self._pending])
        for (track, _), vector in zip(self._pending, vectors, strict=True):
            track.embeddings.append(vector)
        self.embedded += len(self._pending)
        self._pending = []
