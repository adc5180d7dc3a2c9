"""`facereel recognize --engine ray`: the batch on Ray actors, with a progress bar while it
runs and a summary at the end (done, errors, retried, per-node throughput)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from facereel.cli.common import err, out
from facereel.config import Settings

if TYPE_CHECKING:
    from facereel.app.sources import Location, Sources
    from facereel.deploy.ray_driver import RunSummary
    from facereel.deploy.ray_work import Outcome

TABLE_LIMIT = 200  # a run this small also gets the table the local engine prints


def recognize_on_ray(sources: Sources, target: Location | None, settings: Settings,
                     as_json: bool) -> int:
    """Run the batch; the exit code (0, 1 when every input failed, 2 when none was found)."""
    from facereel.deploy.ray_env import keep_on_loopback

    keep_on_loopback(settings.ray.ray_address)
    from facereel.app.batchwork import judge_of
    from facereel.core.results import VideoResult
    from facereel.deploy.ray import run_batch

    judge = judge_of(settings)
    kept: list[VideoResult] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.fields[listed]}"),
                        TimeElapsedColumn(), console=err,
                        disable=as_json or not err.is_terminal)

    def on_result(outcome: Outcome) -> None:
        doc = outcome.result or {}
        if as_json:
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()
        elif len(kept) < TABLE_LIMIT:
            kept.append(VideoResult.from_dict(doc))

    with progress:
        task = progress.add_task("recognizing", total=None, listed="?")

        def on_tick(summary: RunSummary, listed_all: bool) -> None:
            listed = str(summary.listed) if listed_all else f"{summary.listed}+"
            progress.update(task, completed=summary.done, listed=listed,
                            total=summary.listed if listed_all else None,
                            description=f"recognizing (retried {summary.retried}, "
                            f"errors {summary.errors})")

        def on_start(where: str, actors: int) -> None:
            err.print(f"recognizing on {where}: {actors} actors")

        summary = run_batch(sources, target, settings, judge, on_result, on_tick, on_start)
    if not as_json and summary.done <= TABLE_LIMIT and kept:
        from facereel.cli.recognition import results_table

        out.print(results_table(kept))
    if as_json:  # for programs: the summary as one JSON object, beside the results
        sys.stderr.write(json.dumps({"summary": summary.to_dict()}) + "\n")
    else:
        err.print(summary_table(summary))
    if not summary.listed:
        err.print("[red]error[/red]: no videos or images found in "
                  + ", ".join(str(location) for location in sources.locations))
        return 2
    return 1 if summary.errors + summary.lost == summary.listed else 0


def summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"{summary.done} of {summary.listed} done in {summary.wall_s:.1f} s: "
                  f"{summary.errors} errors, {summary.retried} retried, {summary.lost} lost")
    for column in ("node", "videos", "videos/s", "calls", "busy s"):
        table.add_column(column)
    for node, tally in sorted(summary.nodes.items()):
        rate = tally.videos / summary.wall_s if summary.wall_s else 0.0
        table.add_row(node, str(tally.videos), f"{rate:.2f}", str(tally.calls),
                      f"{tally.busy_s:.1f}")
    return table
