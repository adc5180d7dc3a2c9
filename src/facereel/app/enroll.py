"""Enrol people from photos: one face per photo becomes one gallery vector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.match import MatchPolicy, claim_message, claimant
from facereel.core.media import ImagePicture, load_image
from facereel.core.sniff import classify, sniff_bytes
from facereel.core.types import Detection, FloatArray, box_area
from facereel.errors import FacereelError, MediaError

MAX_FULL_SIDE = 2000  # when a photo's face is too small for the usual scale, retry up to this


@dataclass(frozen=True, slots=True)
class EnrolOutcome:
    image: str
    person: str
    ok: bool
    message: str


def _faces(models: FaceModels, picture: ImagePicture) -> list[Detection]:
    faces = models.detect(picture)
    if faces:
        return faces
    # Enrolment photos may hold a small face: look again at (nearly) full resolution.
    scale = min(1.0, MAX_FULL_SIDE / max(1, min(picture.width, picture.height)))
    return models.detect(picture, scale=scale)


def embed_photo(models: FaceModels, path: Path) -> tuple[FloatArray, str]:
    """The embedding of the (largest) face in a photo, and a note for the user."""
    if classify(path) != "image":
        raise MediaError(f"{path.name}: enrolment needs a photo, not a video", "not_an_image")
    return _embed_picture(models, load_image(path, path.name), path.name)


def embed_photo_bytes(models: FaceModels, data: bytes, name: str) -> tuple[FloatArray, str]:
    """`embed_photo` for a photo's bytes (an upload, on the app tier)."""
    kind, what = sniff_bytes(data[:512])
    if kind != "image":
        raise MediaError(f"{name}: enrolment needs a photo, not {what}", "not_an_image")
    return _embed_picture(models, load_image(data, name), name)


def _embed_picture(models: FaceModels, picture: ImagePicture,
                   name: str) -> tuple[FloatArray, str]:
    faces = _faces(models, picture)
    if not faces:
        raise MediaError(f"{name}: no face found", "no_face")
    largest = max(faces, key=lambda d: box_area(d.box))
    note = "ok" if len(faces) == 1 else f"{len(faces)} faces; enrolled the largest"
    return models.embed(picture.rgb(), [largest.box])[0], note


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    """Refuses faces that already match somebody else in `gallery` (unless forced)."""

    gallery: Gallery
    policy: MatchPolicy

    def refusal(self, person: str, vector: FloatArray) -> str | None:
        claim = claimant(self.gallery, person, vector, self.policy)
        return None if claim is None else f"{claim_message(claim)}; use --force to enrol"


def enrol(models: FaceModels, gallery: Gallery, person: str, images: list[Path],
          check: ClaimCheck | None = None) -> list[EnrolOutcome]:
    """Embed each photo's face into `gallery` under `person`; one outcome per photo."""
    outcomes = []
    for path in images:
        try:
            vector, note = embed_photo(models, path)
        except FacereelError as exc:
            outcomes.append(EnrolOutcome(path.name, person, False, exc.message))
            continue
        refusal = check.refusal(person, vector) if check is not None else None
        if refusal is not None:
            outcomes.append(EnrolOutcome(path.name, person, False, refusal))
            continue
        gallery.add(person, vector, models.embedder_id)
        outcomes.append(EnrolOutcome(path.name, person, True, note))
    return outcomes


def people_folders(root: Path) -> dict[str, list[Path]]:
    """`root/<person>/<files>` -> {person: files}; hidden entries are ignored. Files that are
    not photos are kept, so enrolment reports them as skipped instead of passing them over."""
    if not root.is_dir():
        raise FacereelError(f"{root} is not a folder", "not_found")
    people: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = sorted(
            p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
        )
        if photos:
            people[folder.name] = photos
    return people
