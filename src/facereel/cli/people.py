"""Commands that change who people are: `gallery rename` and `gallery merge`. Like enrolment,
they republish the past results that change (from the face memory, no video is decoded),
and are written to the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from facereel.cli.common import DataDirOpt, fail, out, settings_from
from facereel.config import Settings
from facereel.errors import FacereelError

if TYPE_CHECKING:
    from facereel.app.memory import FaceMemory
    from facereel.core.gallery import Gallery
    from facereel.core.types import FloatArray


def face_memory(settings: Settings) -> FaceMemory:
    from facereel.app.memory import FaceMemory
    from facereel.pipeline.wiring import build_ports

    return FaceMemory(build_ports(settings.storage, settings.recognition.embedder), settings)


def relearned(settings: Settings, gallery: Gallery, when: bool,
              people: Sequence[str] | None = None) -> int:
    """How many past results `gallery` changed and were republished (none unless `when`:
    the deployment's gallery changed); `people`: who changed, when known."""
    if not when:
        return 0
    return face_memory(settings).relearn(gallery, people).republished


def relearned_near(settings: Settings, gallery: Gallery, faces: Sequence[FloatArray],
                   when: bool) -> int:
    """`relearned` for the videos near `faces` (a removed person's)."""
    if not when:
        return 0
    return face_memory(settings).relearn_near(gallery, faces).republished


def _relabel(old: str, new: str, merge: bool, data_dir: DataDirOpt) -> None:
    from facereel.memory.audit import AuditLog, cli_user

    action = "merge" if merge else "rename"
    try:
        settings = settings_from(data_dir=data_dir)
        with AuditLog(settings.audit_path).audited(cli_user(), "cli", action,
                                                    {"person": old, "into": new}) as audit:
            done = face_memory(settings).relabel(old, new, merge)
            audit.update(done.to_dict())
    except FacereelError as exc:
        raise fail(exc) from exc
    verb = "merged {} into {}" if merge else "renamed {} to {}"
    out.print(f"{verb.format(old, new)}: {done.faces} gallery faces"
              f"{', the metadata record' if done.metadata else ''}; republished "
              f"{done.learned.republished} results")


def gallery_rename(old: Annotated[str, typer.Argument(help="the person's name now")],
                   new: Annotated[str, typer.Argument(help="their new name")],
                   data_dir: DataDirOpt = None) -> None:
    """Rename a person (gallery faces and metadata record); past results naming them are
    republished."""
    _relabel(old, new, False, data_dir)


def gallery_merge(source: Annotated[str, typer.Argument(help="the person merged away")],
                  target: Annotated[str, typer.Argument(help="the person who remains")],
                  data_dir: DataDirOpt = None) -> None:
    """Merge two people: SOURCE's gallery faces and metadata fields go to TARGET (TARGET's
    own fields win); past results that change are republished."""
    _relabel(source, target, True, data_dir)


def register(gallery_app: typer.Typer) -> None:
    gallery_app.command("rename")(gallery_rename)
    gallery_app.command("merge")(gallery_merge)
