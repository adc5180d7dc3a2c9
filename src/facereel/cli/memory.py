"""Commands of the face memory: search, forget, memory index / reembed / status. Search and
forget reach every face ever seen, so each is written to the audit log (`cli:<user>`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from facereel.cli.common import DataDirOpt, GalleryOpt, emit_json, err, fail, out, settings_from
from facereel.config import Settings
from facereel.errors import FacereelError

if TYPE_CHECKING:
    from facereel.app.memory import FaceMemory
    from facereel.memory.search import Match

memory_app = typer.Typer(no_args_is_help=True, help="Look after the face memory.")


def _memory(settings: Settings) -> FaceMemory:
    from facereel.app.memory import FaceMemory
    from facereel.pipeline.wiring import build_ports

    return FaceMemory(build_ports(settings.storage, settings.recognition.embedder), settings)


def search(
    person: Annotated[Optional[str], typer.Option(help="an enrolled person's name")] = None,  # noqa: UP045
    photo: Annotated[Optional[Path], typer.Option(help="a photo of the face to look for")] = None,  # noqa: UP045
    limit: Annotated[Optional[int], typer.Option(min=1, help="at most this many matches")] = None,  # noqa: UP045
    threshold: Annotated[Optional[float], typer.Option(help="match threshold (distance)")] = None,  # noqa: UP045
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per match")] = False,
    gallery: GalleryOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Find a person (or the face in a photo) in every video processed so far, from the
    stored faces: no video is decoded again. Best matches first."""
    from facereel.memory.audit import AuditLog, cli_user

    if (person is None) == (photo is None):
        err.print("usage: facereel search --person NAME | --photo FILE [--limit N]")
        raise typer.Exit(code=2)
    try:
        settings = settings_from(gallery=gallery, data_dir=data_dir)
        memory = _memory(settings)
        target = {"person": person} if person is not None else {"photo": Path(str(photo)).name}
        with AuditLog(settings.audit_path).audited(cli_user(), "cli", "search",
                                                    target) as audit:
            matches = _search(memory, settings, person, photo, threshold, limit)
            audit["matches"] = len(matches)
    except FacereelError as exc:
        raise fail(exc) from exc
    if as_json:
        for match in matches:
            emit_json(match.to_dict())
    else:
        out.print(_table(matches, person or str(photo)))


def _search(memory: FaceMemory, settings: Settings, person: str | None, photo: Path | None,
            threshold: float | None, limit: int | None) -> list[Match]:
    if person is not None:
        return memory.search_person(person, threshold, limit)
    from facereel.app.enroll import embed_photo
    from facereel.core.faces import FaceModels

    models = FaceModels(settings.recognition.face_config()).load()
    vector, _ = embed_photo(models, Path(str(photo)))
    return memory.search_face(vector, threshold, limit)


def _table(matches: list[Match], what: str) -> Table:
    table = Table(title=f"{len(matches)} matches for {what}")
    for column in ("video", "track", "on screen (s)", "similarity", "distance", "face"):
        table.add_column(column)
    for m in matches:
        spans = ", ".join(f"{s / 1000:.1f}-{e / 1000:.1f}" for s, e in m.appearances)
        table.add_row(m.video, m.track_id, spans, f"{m.similarity:.2f}", f"{m.distance:.3f}",
                      m.face or "-")
    return table


def forget(
    video: Annotated[Optional[str], typer.Option(help="a video's key (as search shows it)")] = None,  # noqa: UP045
    person: Annotated[Optional[str], typer.Option(help="a person's name")] = None,  # noqa: UP045
    gallery: GalleryOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Forget a video's faces (its memory and stored crops), or a person (every face of
    theirs in the memory, then their gallery faces and metadata record)."""
    from facereel.memory.audit import AuditLog, cli_user

    if (person is None) == (video is None):
        err.print("usage: facereel forget --video KEY | --person NAME")
        raise typer.Exit(code=2)
    try:
        settings = settings_from(gallery=gallery, data_dir=data_dir)
        memory = _memory(settings)
        target = {"video": video} if video is not None else {"person": person}
        with AuditLog(settings.audit_path).audited(cli_user(), "cli", "forget",
                                                    target) as audit:
            done = memory.forget_video(str(video)) if video is not None \
                else memory.forget_person(str(person))
            audit.update(done.to_dict())
    except FacereelError as exc:
        raise fail(exc) from exc
    out.print(f"forgot {done.tracks} face tracks ({done.faces} faces) of {done.videos} videos"
              f", {done.objects} stored objects, {done.gallery_faces} gallery faces"
              + (", the metadata record" if done.metadata else ""))


def memory_index(
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Bring the face index snapshot up to date (and apply the retention), once. One writer
    at a time: `facereel up` does this every FACEREEL_MEMORY_INDEX_INTERVAL seconds."""
    try:
        report = _memory(settings_from(data_dir=data_dir)).update_index()
    except FacereelError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(report.to_dict())
    else:
        out.print(f"face index: {report.vectors} faces of {report.videos} videos "
                  f"({report.changed} changed, {report.expired} expired"
                  f"{', rebuilt' if report.rebuilt else ''}) in {report.seconds:.2f} s")


def memory_reembed(gallery: GalleryOpt = None, data_dir: DataDirOpt = None) -> None:
    """Re-embed faces remembered by another embedder than the configured one, from their
    stored crops (no video is decoded), and match them again."""
    from facereel.app.recognition import open_gallery
    from facereel.core.faces import FaceModels
    from facereel.memory.reembed import reembed

    try:
        settings = settings_from(gallery=gallery, data_dir=data_dir)
        memory = _memory(settings)
        models = FaceModels(settings.recognition.face_config()).load()
        done = reembed(memory.ports.memory, memory.ports.stage1, models,
                       open_gallery(settings, gallery, create=True),
                       settings.recognition.match_policy())
    except FacereelError as exc:
        raise fail(exc) from exc
    out.print(f"re-embedded {done.faces} faces of {done.videos} videos ({done.current} "
              f"already current, {done.missing} without their crops, {done.changed} changed "
              "meanwhile)")


def memory_status(data_dir: DataDirOpt = None) -> None:
    """How many videos and face tracks are remembered, and how far the index is behind."""
    try:
        emit_json(_memory(settings_from(data_dir=data_dir)).status())
    except FacereelError as exc:
        raise fail(exc) from exc


def register(app: typer.Typer) -> None:
    app.command()(search)
    app.command()(forget)
    memory_app.command("index")(memory_index)
    memory_app.command("reembed")(memory_reembed)
    memory_app.command("status")(memory_status)
    app.add_typer(memory_app, name="memory")
