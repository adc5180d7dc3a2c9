"""Pipeline commands of the `facereel` CLI: up, watch, worker, status, workload."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from facereel.cli.common import (
    DataDirOpt,
    GalleryOpt,
    WorkersOpt,
    emit_json,
    err,
    fail,
    out,
    settings_from,
)
from facereel.config import Settings
from facereel.core.sniff import MEDIA_EXTENSIONS
from facereel.errors import FacereelError

if TYPE_CHECKING:
    from facereel.app.provision import Outcome
    from facereel.http.server import HttpTier
    from facereel.pipeline.wiring import Ports


def _ports(settings: Settings) -> Ports:
    from facereel.pipeline.wiring import build_ports

    return build_ports(settings.storage, settings.recognition.embedder)


def up(
    data_dir: DataDirOpt = None,
    workers: WorkersOpt = None,
    gallery: GalleryOpt = None,
    port: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="HTTP port (default 8000; 0 = no HTTP API)")] = None,
    host: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="HTTP address (default 127.0.0.1; others need FACEREEL_API_KEYS)")] = None,
) -> None:
    """Run the pipeline on embedded defaults: watch the input bucket, process, publish; serve
    the HTTP API, the web page and the image tier."""
    from facereel.runtime.service import run_up

    settings = settings_from(service=True, data_dir=data_dir, workers=workers, gallery=gallery,
                             port=port, host=host)
    count = settings.pipeline.worker_count
    try:
        http = _http_tier(settings)

        def ready() -> None:
            ports = _ports(settings)
            where = f"; API and web page on {http.url}" if http else ""
            err.print(f"facereel is up: {count} workers; drop videos into "
                      f"{ports.input.describe()}; results appear in {ports.output.describe()}"
                      f"{where}. Ctrl-C stops (in-flight work finishes first).")

        run_up(settings, count, extra=http.run if http else None, on_ready=ready)
    except FacereelError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(code=2) from exc


def _http_tier(settings: Settings) -> HttpTier | None:
    if not settings.http.port:
        return None
    from facereel.http.server import HttpTier

    return HttpTier(settings)


def watch(
    data_dir: DataDirOpt = None,
    invoke: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="invoke this function URL for each upload instead of queueing it (OpenFaaS: "
        "GATEWAY/function/face-recognition, or GATEWAY/async-function/face-recognition)")] = None,
    invoke_key_file: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="file holding the function's API key (default: FACEREEL_INVOKE_KEY)")] = None,
) -> None:
    """Only watch the input bucket and hand new uploads over: queue them for workers that run
    elsewhere, or (--invoke) post {"bucket", "key"} to a function, like the original
    deployment's bucket monitor."""
    from facereel.runtime.watcher import watcher_for

    settings = settings_from(service=True, data_dir=data_dir)
    ports = _ports(settings)
    stop = threading.Event()
    send = None
    if invoke is not None:
        from facereel.runtime.invoker import invoker_for

        key = _read_key(invoke_key_file) if invoke_key_file is not None else None
        send = invoker_for(settings, ports, invoke, key, wait=stop.wait)
    try:
        watcher_for(settings, ports, send).run(stop)
    except KeyboardInterrupt:
        stop.set()


def _read_key(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise FacereelError(f"cannot read the API key file {path}: {exc.strerror}",
                            "config_error") from exc


def worker(data_dir: DataDirOpt = None) -> None:
    """Run one pipeline worker in the foreground (scale out by starting more, anywhere)."""
    from facereel.runtime.workers import Worker

    settings = settings_from(service=True, data_dir=data_dir)
    stop = threading.Event()
    try:
        Worker(settings, os.getpid()).run(stop)
    except KeyboardInterrupt:
        stop.set()


def app_worker(data_dir: DataDirOpt = None) -> None:
    """Run one app-tier worker in the foreground: answer image requests from the request
    queue (what an EC2 app-tier instance runs at boot; `up` starts its own locally)."""
    from facereel.imagetier.worker import serve_images

    settings = settings_from(service=True, data_dir=data_dir)
    stop = threading.Event()
    try:
        serve_images(settings, os.getpid(), stop)
    except KeyboardInterrupt:
        stop.set()


def status(
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object, for programs")] = False,
) -> None:
    """Queue depths (pipeline stages and image requests), done / failed / dead-lettered
    counts, and the workers a running `facereel up` reports."""
    from facereel.app.status import full_status, service_url

    settings = settings_from(service=True, data_dir=data_dir)
    try:
        report, answered = full_status(settings, _ports(settings))
    except FacereelError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(report.to_dict())
        return
    table = Table(title="queues")
    for column in ("queue", "waiting", "in flight", "delayed", "dead letters"):
        table.add_column(column)
    for name, depth in report.queues.items():
        table.add_row(name, str(depth.visible), str(depth.in_flight), str(depth.delayed),
                      str(depth.dead))
    out.print(table)
    videos = ", ".join(f"{k}: {v}" for k, v in sorted(report.videos.items())) or "none yet"
    out.print(f"videos: {videos}")
    if answered:
        out.print("workers: " + ", ".join(f"{tier} {n}" for tier, n in report.workers.items()))
    else:
        out.print(f"workers: no facereel service answers at {service_url(settings)}")


def workload(
    folder: Annotated[Path, typer.Argument(help="folder of videos to upload")],
    count: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=1, help="upload this many, cycling through the folder; every upload gets its own "
        "key (NAME-r1.mp4 on the second round...)")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="parallel uploads")] = 8,
    prefix: Annotated[str, typer.Option(help="key prefix in the input bucket")] = "",
    data_dir: DataDirOpt = None,
) -> None:
    """Upload videos to the input bucket (like the coursework workload generator)."""
    from facereel.app.workload import plan_keys, upload

    settings = settings_from(service=True, data_dir=data_dir)
    files = sorted(p for p in folder.iterdir() if p.is_file()
                   and p.suffix.lower() in MEDIA_EXTENSIONS) if folder.is_dir() else [folder]
    if not files:
        err.print(f"[red]error[/red]: no videos in {folder}")
        raise typer.Exit(code=2)
    items = plan_keys(files, count, prefix)
    total = len(items)
    ports = _ports(settings)
    progress = Progress(TextColumn("uploading"), BarColumn(), MofNCompleteColumn(), console=err,
                        disable=not err.is_terminal)
    with progress:
        task = progress.add_task("upload", total=total)
        report = upload(ports, items, concurrency,
                        lambda done: progress.update(task, completed=done))
    out.print(f"uploaded {report.uploaded} files ({report.bytes / 2**20:.1f} MiB) in "
              f"{report.seconds:.2f} s: {report.rate:.1f} uploads/s; refused {report.refused}, "
              f"failed {len(report.failed)}")
    for key, problem in report.failed:
        err.print(f"[red]failed[/red] {key}: {problem}")
    if report.failed:
        raise typer.Exit(code=1)


def provision(
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per resource")] = False,
    fix: Annotated[bool, typer.Option(help="bring differing queues and rules in line")] = False,
) -> None:
    """Create the buckets, queues (with dead-letter queues), tables and bucket notification
    the configured remote backends need; report each as created, exists or different.
    Idempotent. Exits 1 when a resource differs or could not be checked."""
    from facereel.app.provision import provision as apply_plan

    settings = settings_from(data_dir=data_dir)
    outcomes = apply_plan(settings.storage, fix=fix)
    if as_json:
        for outcome in outcomes:
            emit_json(outcome.to_dict())
    else:
        _provision_table(outcomes)
    if any(o.state in ("different", "error") for o in outcomes):
        raise typer.Exit(code=1)


def _provision_table(outcomes: list[Outcome]) -> None:
    if not outcomes:
        out.print("nothing to provision: every backend is embedded (folders and SQLite are "
                  "created on first use)")
        return
    colour = {"created": "green", "exists": "", "different": "yellow", "error": "red"}
    table = Table(title="provision")
    for column in ("resource", "name", "state", "detail"):
        table.add_column(column)
    for o in outcomes:
        state = f"[{colour[o.state]}]{o.state}[/]" if colour[o.state] else o.state
        table.add_row(o.kind, o.name, state, o.detail or o.purpose)
    out.print(table)


def register(app: typer.Typer) -> None:
    for command in (up, watch, worker, status, workload, provision):
        app.command()(command)
    app.command("app-worker")(app_worker)
