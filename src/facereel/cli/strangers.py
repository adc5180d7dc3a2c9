"""`facereel strangers`: the groups of faces matched to nobody, across every video remembered
(regrouped first when the memory changed), and `name`, `merge`, `split` for each group.
Naming, merging and splitting are written to the audit log; naming republishes the past
results that change."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from facereel.cli.common import DataDirOpt, emit_json, fail, out, settings_from
from facereel.cli.people import face_memory
from facereel.errors import FacereelError

if TYPE_CHECKING:
    from facereel.app.memory import FaceMemory
    from facereel.ports.strangers import TrackRef

strangers_app = typer.Typer(help="Groups of faces nobody is enrolled as (strangers).")


@strangers_app.callback(invoke_without_command=True)
def strangers(ctx: typer.Context,
              as_json: Annotated[bool, typer.Option("--json", help="one JSON object per "
                                                    "group")] = False,
              data_dir: DataDirOpt = None) -> None:
    """List the groups of strangers: tracks, faces, videos and sample crops of each."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        found = face_memory(settings_from(data_dir=data_dir)).strangers.listing()
    except FacereelError as exc:
        raise fail(exc) from exc
    if as_json:
        for group in found["groups"]:
            emit_json(group)
        return
    out.print(_table(found))


def _table(found: dict[str, Any]) -> Table:
    table = Table(title=f"{len(found['groups'])} groups of strangers "
                  f"({found['ungrouped']} face tracks in none)")
    for column in ("group", "tracks", "faces", "videos", "sample crops"):
        table.add_column(column)
    for g in found["groups"]:
        videos = sorted({v["video"] for v in g["videos"]})
        table.add_row(g["group_id"], str(g["tracks"]), str(g["faces"]), ", ".join(videos),
                      "\n".join(g["samples"]) or "-")
    return table


def _audited(action: str, target: dict[str, Any], data_dir: DataDirOpt,
             work: Callable[[FaceMemory], Any],
             summary: Callable[[Any], dict[str, Any]]) -> Any:
    """`work` on the face memory, written to the audit log with `summary` of its answer."""
    from facereel.memory.audit import AuditLog, cli_user

    try:
        settings = settings_from(data_dir=data_dir)
        with AuditLog(settings.audit_path).audited(cli_user(), "cli", action,
                                                    target) as audit:
            done = work(face_memory(settings))
            audit.update(summary(done))
    except FacereelError as exc:
        raise fail(exc) from exc
    return done


def name(group_id: Annotated[str, typer.Argument(help="the group (see facereel strangers)")],
         person: Annotated[str, typer.Argument(help="who they are")],
         force: Annotated[bool, typer.Option(
             "--force", help="enrol even faces that match another person")] = False,
         data_dir: DataDirOpt = None) -> None:
    """Enrol a group's faces as PERSON; past results that change are republished."""
    if not person.strip():
        raise fail(FacereelError("a person needs a non-empty name", "invalid_name"))
    done = _audited("name_strangers", {"group": group_id, "person": person}, data_dir,
                    lambda memory: memory.name_group(group_id, person.strip(), force),
                    lambda done: done.to_dict())
    out.print(f"enrolled {done.enrolled} faces of group {group_id} as {done.person}; "
              f"republished {done.learned.republished} results")


def merge(group_ids: Annotated[list[str], typer.Argument(help="two or more groups; the "
                                                         "first keeps its id")],
          data_dir: DataDirOpt = None) -> None:
    """Merge groups of strangers that are one person."""
    done = _audited("merge_strangers", {"groups": group_ids}, data_dir,
                    lambda memory: memory.strangers.merge(group_ids),
                    lambda done: {"group_id": done["group_id"], "tracks": done["tracks"]})
    out.print(f"merged into group {done['group_id']}: {done['tracks']} tracks, "
              f"{done['faces']} faces")


def _ref(text: str) -> TrackRef:
    video, sep, track = text.rpartition(":")
    if not sep or not video or not track:
        raise fail(FacereelError(f"--track {text!r}: give VIDEO:TRACK_ID", "invalid_request"))
    return video, track


def split(group_id: Annotated[str, typer.Argument(help="the group to split")],
          tracks: Annotated[list[str], typer.Option(
              "--track", help="VIDEO:TRACK_ID of a track to move (repeat)")],
          data_dir: DataDirOpt = None) -> None:
    """Move some tracks of a wrong group to a new group."""
    refs = [_ref(t) for t in tracks]
    new = _audited("split_strangers", {"group": group_id, "tracks": tracks}, data_dir,
                   lambda memory: memory.strangers.split(group_id, refs),
                   lambda new: {"group_id": new})
    out.print(f"moved {len(refs)} tracks of group {group_id} to new group {new}")


def register(app: typer.Typer) -> None:
    strangers_app.command("name")(name)
    strangers_app.command("merge")(merge)
    strangers_app.command("split")(split)
    app.add_typer(strangers_app, name="strangers")
