"""Commands of the core: recognize, enroll, gallery import/list/remove, metadata, grade."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from facereel.cli.common import (
    DataDirOpt,
    GalleryOpt,
    emit_json,
    err,
    fail,
    out,
    settings_from,
)
from facereel.cli.people import relearned, relearned_near
from facereel.config import Settings
from facereel.errors import FacereelError
from facereel.ports.metadata import read_people_json

if TYPE_CHECKING:  # the core (numpy, PyAV, dlib, onnxruntime) loads only for commands using it
    from facereel.app.enroll import EnrolOutcome
    from facereel.app.sources import InputItem, Location
    from facereel.core.gallery import Gallery
    from facereel.core.results import VideoResult
    from facereel.core.types import FloatArray
    from facereel.ports.gallery import GallerySnapshot, GalleryStore
    from facereel.ports.objectstore import ObjectStore

gallery_app = typer.Typer(no_args_is_help=True, help="Manage the gallery of enrolled people.")
metadata_app = typer.Typer(no_args_is_help=True, help="Manage people's metadata records.")


def recognize(
    sources: Annotated[list[str], typer.Argument(
        help="video/image files, folders, or s3://bucket/prefix")],
    gallery: GalleryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per input")] = False,
    out_to: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--out", help="write <name>.json, <stem>.txt/.csv and face crops to a folder or "
        "s3://bucket/prefix",
    )] = None,
    workers: Annotated[Optional[int], typer.Option(help="worker processes (default: cores)")] = None,  # noqa: UP045, E501
    sampling: Annotated[Optional[str], typer.Option(help="adaptive|first|keyframes|all|fps=N")] = None,  # noqa: UP045, E501
    threshold: Annotated[Optional[float], typer.Option(help="match threshold (distance)")] = None,  # noqa: UP045
    engine: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="local (a pool of processes) or ray (actors on a Ray cluster)")] = None,
    address: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="with --engine ray: the cluster to join (host:port or auto; default: start a "
        "local Ray)")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Recognize the people in videos and images. With a data directory (--data-dir, or the
    default one once it exists) every face track is also kept in the face memory."""
    from facereel.app.recognition import gallery_of, open_gallery
    from facereel.app.sources import open_sources, parse_location

    try:
        settings = settings_from(gallery=gallery, workers=workers, sampling=sampling,
                                 threshold=threshold, data_dir=data_dir, engine=engine,
                                 ray_address=address)
        # read before any worker starts, so a broken gallery is one clear line
        if not open_gallery(settings, create=True).people:
            err.print(f"warning: {gallery_of(settings, gallery).describe()} is empty or does "
                      "not exist: every face will be reported as a stranger (enrol people "
                      "with `facereel enroll NAME PHOTO...` or `facereel gallery import FILE`)")
        target = parse_location(out_to) if out_to is not None else None
        batch = open_sources(sources, settings.storage)
        if settings.ray.engine == "ray":
            from facereel.cli.ray_batch import recognize_on_ray

            raise typer.Exit(recognize_on_ray(batch, target, settings, as_json))
        items = list(batch.items())
    except FacereelError as exc:
        raise fail(exc) from exc
    if not items:
        err.print("[red]error[/red]: no videos or images found in " + ", ".join(sources))
        raise typer.Exit(code=2)
    remember = settings.pipeline.remember_faces and (data_dir is not None
                                                     or settings.data_dir.is_dir())
    results = _run_batch(items, settings, as_json, target, remember)
    if not as_json:
        out.print(results_table(results))
    if all(r.status == "error" for r in results):
        raise typer.Exit(code=1)


def _run_batch(items: list[InputItem], settings: Settings, as_json: bool,
               target: Location | None, remember: bool) -> list[VideoResult]:
    from facereel.app.sources import make_sink
    from facereel.runtime.batch import in_order, recognize_items

    results: list[VideoResult] = []
    sink = make_sink(target, settings.storage) if target is not None else None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, disable=as_json or not err.is_terminal)
    with progress:
        task = progress.add_task("recognizing", total=len(items))

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        for index, result in in_order(recognize_items(items, settings, advance,
                                                      faces=sink is not None,
                                                      remember=remember)):
            results.append(result)
            if as_json:
                emit_json(result.to_dict())
            if sink is not None:
                sink.write(items[index].name, result)
    return results


def results_table(results: list[VideoResult]) -> Table:
    table = Table(title=f"{len(results)} inputs")
    for column in ("input", "status", "people (first-last s, similarity)", "unknown", "ms"):
        table.add_column(column)
    for r in results:
        if r.error is not None:
            people = f"[red]{r.error.code}[/red]: {r.error.message}"
        else:
            people = ", ".join(
                f"{p.person} ({p.first_ms / 1000:.1f}-{p.last_ms / 1000:.1f}, {p.similarity:.2f})"
                for p in r.people
            ) or "-"
        table.add_row(r.video, r.status, people, str(r.unknown_faces),
                      str(int(r.stats.get("elapsed_ms", 0))))
    return table


def enroll(
    name: Annotated[Optional[str], typer.Argument(help="person's name")] = None,  # noqa: UP045
    images: Annotated[Optional[list[Path]], typer.Argument(help="photos of them")] = None,  # noqa: UP045
    from_folder: Annotated[Optional[Path], typer.Option(help="one sub-folder per person")] = None,  # noqa: UP045
    force: Annotated[bool, typer.Option(
        "--force", help="enrol faces even when they already match another person")] = False,
    gallery: GalleryOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Enrol a person from photos (or everyone in a folder of per-person folders). A face
    that already matches somebody else is skipped, saying who, unless --force."""
    from facereel.app.enroll import people_folders
    from facereel.app.recognition import gallery_of
    from facereel.memory.audit import AuditLog, cli_user

    if from_folder is None and (not name or not images):
        err.print("usage: facereel enroll NAME IMAGE... | facereel enroll --from-folder DIR")
        raise typer.Exit(code=2)
    try:
        settings = settings_from(gallery=gallery, data_dir=data_dir)
        store = gallery_of(settings, gallery)
        batches = people_folders(from_folder) if from_folder else {str(name): list(images or [])}
        target = {"people": sorted(batches), "photos": sum(map(len, batches.values())),
                  "force": force}
        with AuditLog(settings.audit_path).audited(cli_user(), "cli", "enrol",
                                                    target) as audit:
            outcomes, snapshot = _enrol_all(settings, store, batches, force)
            audit["enrolled"] = sum(o.ok for o in outcomes)
            learned = relearned(settings, snapshot.gallery, gallery is None
                                and any(o.ok for o in outcomes),
                                sorted({o.person for o in outcomes if o.ok}))
            audit["republished"] = learned
    except FacereelError as exc:
        raise fail(exc) from exc
    for o in outcomes:
        mark = "[green]ok[/green]" if o.ok else "[red]skipped[/red]"
        out.print(f"{mark} {o.person} <- {o.image}: {o.message}")
    result = snapshot.gallery
    out.print(f"{store.describe()}: {len(result.people)} people, {len(result)} faces; "
              f"republished {learned} results")
    if not any(o.ok for o in outcomes):
        raise typer.Exit(code=1)


def _enrol_all(settings: Settings, store: GalleryStore, batches: dict[str, list[Path]],
               force: bool) -> tuple[list[EnrolOutcome], GallerySnapshot]:
    """Every photo's outcome, and the gallery after adding what was enrolled (one write)."""
    from facereel.app.enroll import ClaimCheck, enrol
    from facereel.core.faces import FaceModels
    from facereel.core.gallery import Gallery

    models = FaceModels(settings.recognition.face_config()).load()
    staged = Gallery(store.embedder, store.dim)
    check = None if force else ClaimCheck(store.load().gallery,
                                          settings.recognition.match_policy())
    outcomes = [o for person, photos in batches.items()
                for o in enrol(models, staged, person, photos, check)]
    if not any(o.ok for o in outcomes):
        return outcomes, store.load()
    return outcomes, store.update(lambda current: current.merge(staged))[1]


def gallery_import(
    file: Annotated[Path, typer.Argument(help="encoding pickle, data.pt, or .npz gallery")],
    gallery: GalleryOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Import people from a gallery file into the gallery (created when missing)."""
    from facereel.app.recognition import gallery_of, open_gallery

    try:
        settings = settings_from(gallery=gallery, data_dir=data_dir)
        incoming = open_gallery(settings, file)
        store = gallery_of(settings, gallery)
        added, snapshot = store.update(lambda current: current.merge(incoming))
        learned = relearned(settings, snapshot.gallery, gallery is None and added > 0,
                            incoming.people)
    except FacereelError as exc:
        raise fail(exc) from exc
    out.print(f"imported {len(incoming.people)} people ({len(incoming)} faces) into "
              f"{store.describe()}: now {len(snapshot.gallery.people)} people; republished "
              f"{learned} results")


def gallery_list(gallery: GalleryOpt = None, data_dir: DataDirOpt = None) -> None:
    """List enrolled people."""
    from facereel.app.recognition import gallery_of, open_gallery

    try:
        settings = settings_from(gallery=gallery, data_dir=data_dir)
        store = open_gallery(settings, gallery)
    except FacereelError as exc:
        raise fail(exc) from exc
    where = gallery_of(settings, gallery).describe()
    table = Table(title=f"{where} ({store.embedder}, {store.dim}-d)")
    table.add_column("person")
    table.add_column("faces", justify="right")
    for person, count in store.counts().items():
        table.add_row(person, str(count))
    out.print(table)


def gallery_remove(name: Annotated[str, typer.Argument(help="the person to remove")],
                   gallery: GalleryOpt = None, data_dir: DataDirOpt = None) -> None:
    """Remove a person from the gallery."""
    from facereel.app.recognition import gallery_of

    try:
        settings = settings_from(gallery=gallery, data_dir=data_dir)
        faces: list[FloatArray] = []

        def remove(current: Gallery) -> int:
            faces[:] = [current.vectors_of(name)]
            return current.remove(name)

        removed, snapshot = gallery_of(settings, gallery).update(remove)
        learned = relearned_near(settings, snapshot.gallery, faces,
                                 gallery is None and removed > 0)
    except FacereelError as exc:
        raise fail(exc) from exc
    if not removed:
        err.print(f"no such person {name!r} in the gallery (see facereel gallery list)")
        raise typer.Exit(code=1)
    out.print(f"removed {removed} faces of {name}; republished {learned} results")


def metadata_load(
    file: Annotated[Path, typer.Argument(help="student_data.json-style list of records")],
    data_dir: DataDirOpt = None,
) -> None:
    """Load people's metadata records (keyed by name) into the metadata store."""
    from facereel.pipeline.wiring import metadata_store

    try:
        settings = settings_from(data_dir=data_dir)
        store = metadata_store(settings.storage)
        count = store.put_people(read_people_json(file))
    except FacereelError as exc:
        raise fail(exc) from exc
    out.print(f"loaded {count} records into {store.describe()}")


def metadata_list(data_dir: DataDirOpt = None) -> None:
    """List people's metadata records."""
    from facereel.pipeline.wiring import metadata_store

    settings = settings_from(data_dir=data_dir)
    for record in metadata_store(settings.storage).list_people():
        emit_json(record)


def grade(
    mapping: Annotated[Path, typer.Option(help="lines video.mp4:major,year")],
    students: Annotated[Path, typer.Option(help="student_data.json")],
    results: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        help="folder of <stem>.json or a JSON-lines file (default: the output bucket)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list wrong videos")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Grade results the coursework way: right when major,year match the mapping."""
    from facereel.app.grading import grade_files

    try:
        source = results if results is not None else output_bucket(
            settings_from(data_dir=data_dir))
        outcome = grade_files(source, mapping, students)
    except FacereelError as exc:
        raise fail(exc) from exc
    if verbose:
        for video, expected, got in outcome.wrong:
            err.print(f"wrong {video}: expected {expected}, got {got}")
    out.print(str(outcome))


def output_bucket(settings: Settings) -> ObjectStore:
    from facereel.pipeline.wiring import object_store

    return object_store(settings.storage, settings.storage.output)


def register(app: typer.Typer) -> None:
    for command in (recognize, enroll, grade):
        app.command()(command)
    gallery_app.command("import")(gallery_import)
    gallery_app.command("list")(gallery_list)
    gallery_app.command("remove")(gallery_remove)
    metadata_app.command("load")(metadata_load)
    metadata_app.command("list")(metadata_list)
    app.add_typer(gallery_app, name="gallery")
    app.add_typer(metadata_app, name="metadata")
