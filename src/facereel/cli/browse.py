"""Browsing commands of the `facereel` CLI: `videos` and `results` (filtered, a page at a time)
and `dead-letters` (what the pipeline gave up on, and sending it back).

Tables are for people; `--json` is for programs: one JSON object per line, written straight to
stdout (never wrapped or coloured, whatever the terminal), with anything else (the next
page's cursor) on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from facereel.app.browse import DEFAULT_LIMIT, MAX_LIMIT, Filters, browse, parse_time
from facereel.cli.common import DataDirOpt, emit_json, err, out, settings_from
from facereel.config import Settings

if TYPE_CHECKING:
    from facereel.pipeline.wiring import Ports

StatusOpt = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045 - typer needs Optional
    "--status", help="only this status; repeat for several")]
PersonOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="only videos whose published result names this person")]
SinceOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="updated at or after this time (ISO-8601, e.g. 2025-01-31 or 2025-01-31T08:00Z; "
    "UTC when no zone is given)")]
UntilOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="updated at or before this time (ISO-8601)")]
LimitOpt = Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="rows per page")]
CursorOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="continue after an earlier page (the cursor it printed)")]
AllOpt = Annotated[bool, typer.Option("--all", help="every page, one after the other")]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object per line")]


def _ports(settings: Settings) -> Ports:
    from facereel.pipeline.wiring import build_ports

    return build_ports(settings.storage, settings.recognition.embedder)


def _listing(listing: str, filters: Filters, limit: int, cursor: str | None, every: bool,
             as_json: bool, data_dir: Path | None) -> None:
    settings = settings_from(data_dir=data_dir)
    metadata = _ports(settings).metadata
    shown = 0
    while True:
        page = browse(metadata, listing, filters, limit, cursor)
        if as_json:
            for item in page.items:
                emit_json(item)
        else:
            out.print(_video_table(page.items))
        shown += len(page.items)
        cursor = page.next
        if cursor is None or not every:
            break
    if cursor is not None:
        err.print(f"more: add --cursor {cursor} (or --all)", soft_wrap=True, highlight=False)
    elif not as_json and shown == 0:
        err.print(f"no {listing} match")


def _video_table(items: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False)
    for column in ("updated (UTC)", "status", "video", "people", "error"):
        table.add_column(column, overflow="fold")
    for item in items:
        error = item["error"]
        table.add_row(item["updated"][:19].replace("T", " "), item["status"],
                      item["key"], ", ".join(item["people"]),
                      f"{error['code']}: {error['message']}" if error else "")
    return table


def _filters(status: list[str] | None, person: str | None, since: str | None,
             until: str | None) -> Filters:
    return Filters(tuple(status or ()), person, parse_time(since) if since else None,
                   parse_time(until) if until else None)


def results(status: StatusOpt = None, person: PersonOpt = None, since: SinceOpt = None,
            until: UntilOpt = None, limit: LimitOpt = DEFAULT_LIMIT, cursor: CursorOpt = None,
            every: AllOpt = False, as_json: JsonOpt = False,
            data_dir: DataDirOpt = None) -> None:
    """Published results, most recent first (status done or error): who each video shows,
    or why it failed. The whole document: GET /v1/results/{video} or the output bucket."""
    _listing("results", _filters(status, person, since, until), limit, cursor, every, as_json,
             data_dir)


def videos(status: StatusOpt = None, person: PersonOpt = None, since: SinceOpt = None,
           until: UntilOpt = None, limit: LimitOpt = DEFAULT_LIMIT, cursor: CursorOpt = None,
           every: AllOpt = False, as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """Every video the pipeline knows (queued, processing, recognizing, done, error, dead),
    most recently updated first."""
    _listing("videos", _filters(status, person, since, until), limit, cursor, every, as_json,
             data_dir)


def dead_letters(
    queue: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="one stage's queue (split, analyze, recognize, publish); default: all")] = None,
    key: Annotated[Optional[str], typer.Option(help="one video's")] = None,  # noqa: UP045
    redrive: Annotated[bool, typer.Option(
        "--redrive", help="send them back for another try")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="shown per queue")] = 100,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Messages the pipeline gave up on after repeated failures, with the error of their last
    try; --redrive sends them back to their queues (each gets every attempt again)."""
    from facereel.app import dead_letters as dead

    settings = settings_from(data_dir=data_dir)
    ports, selection = _ports(settings), dead.Selection(queue, key)
    found = dead.redrive(ports, selection) if redrive else \
        dead.dead_letters(ports, selection, limit)
    if as_json:
        for message in found:
            emit_json(message.to_dict())
    elif found:
        table = Table(show_edge=False)
        for column in ("queue", "video", "attempts", "error"):
            table.add_column(column, overflow="fold")
        for message in found:
            error = f"{message.error_code}: {message.error_message}".strip(": ")
            table.add_row(message.queue, message.key, str(message.attempts), error)
        out.print(table)
    if not as_json:
        out.print(f"sent back {len(found)} dead letters" if redrive
                  else f"{len(found)} dead letters")


def register(app: typer.Typer) -> None:
    app.command()(results)
    app.command()(videos)
    app.command("dead-letters")(dead_letters)
