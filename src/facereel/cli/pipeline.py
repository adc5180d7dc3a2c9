"""Pipeline commands of the `facereel` CLI: up, watch, worker, status, workload."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from facereel.app.status import pipeline_status
from facereel.config import Settings
from facereel.core.sniff import MEDIA_EXTENSIONS
from facereel.errors import FacereelError
from facereel.logs import configure
from facereel.pipeline.wiring import build_ports

if TYPE_CHECKING:
    from facereel.http.server import HttpTier

out = Console()
err = Console(stderr=True)

DataDirOpt = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional here
    typer.Option("--data-dir", help="where embedded state lives (default ./facereel-data)"),
]
WorkersOpt = Annotated[Optional[int], typer.Option(help="worker processes (default: cores)")]  # noqa: UP045


def _settings(**overrides: object) -> Settings:
    settings = Settings().with_overrides(**overrides)
    if "log_level" not in settings.model_fields_set:
        settings = settings.with_overrides(log_level="INFO")  # a service tells what it does
    configure(settings.log_level, settings.log_format)
    return settings


def up(
    data_dir: DataDirOpt = None,
    workers: WorkersOpt = None,
    gallery: Annotated[Optional[Path], typer.Option("--gallery", "-g")] = None,  # noqa: UP045
    port: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="HTTP port (default 8000; 0 = no HTTP API)")] = None,
    host: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="HTTP address (default 127.0.0.1; others need FACEREEL_API_KEYS)")] = None,
) -> None:
    """Run the pipeline on embedded defaults: watch the input bucket, process, publish; serve
    the HTTP API, the web page and the image tier."""
    from facereel.runtime.service import run_up

    settings = _settings(data_dir=data_dir, workers=workers, gallery=gallery, port=port,
                         host=host)
    count = settings.worker_count
    try:
        http = _http_tier(settings)

        def ready() -> None:
            ports = build_ports(settings)
            where = f"; API and web page on {http.url}" if http else ""
            err.print(f"facereel is up: {count} workers; drop videos into "
                      f"{ports.input.describe()}; results appear in {ports.output.describe()}"
                      f"{where}. Ctrl-C stops (in-flight work finishes first).")

        run_up(settings, count, extra=http.run if http else None, on_ready=ready)
    except FacereelError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(code=2) from exc


def _http_tier(settings: Settings) -> HttpTier | None:
    if not settings.port:
        return None
    from facereel.http.server import HttpTier

    return HttpTier(settings)


def watch(data_dir: DataDirOpt = None) -> None:
    """Only watch the input bucket and queue new uploads (workers run elsewhere)."""
    from facereel.runtime.watcher import Watcher

    settings = _settings(data_dir=data_dir)
    stop = threading.Event()
    try:
        Watcher(settings, build_ports(settings)).run(stop)
    except KeyboardInterrupt:
        stop.set()


def worker(data_dir: DataDirOpt = None) -> None:
    """Run one pipeline worker in the foreground (scale out by starting more, anywhere)."""
    from facereel.runtime.workers import Worker

    settings = _settings(data_dir=data_dir)
    stop = threading.Event()
    try:
        Worker(settings, os.getpid()).run(stop)
    except KeyboardInterrupt:
        stop.set()


def app_worker(data_dir: DataDirOpt = None) -> None:
    """Run one app-tier worker in the foreground: answer image requests from the request
    queue (what an EC2 app-tier instance runs at boot; `up` starts its own locally)."""
    from facereel.imagetier.client import serve_images

    settings = _settings(data_dir=data_dir)
    stop = threading.Event()
    try:
        serve_images(settings, os.getpid(), stop)
    except KeyboardInterrupt:
        stop.set()


def status(
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Queue depths and done / failed / dead-lettered counts."""
    settings = _settings(data_dir=data_dir)
    report = pipeline_status(build_ports(settings))
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title="queues")
    for column in ("stage", "waiting", "in flight", "delayed", "dead letters"):
        table.add_column(column)
    for name, depth in report.queues.items():
        table.add_row(name, str(depth.visible), str(depth.in_flight), str(depth.delayed),
                      str(depth.dead))
    out.print(table)
    videos = ", ".join(f"{k}: {v}" for k, v in sorted(report.videos.items())) or "none yet"
    out.print(f"videos: {videos}")


def workload(
    folder: Annotated[Path, typer.Argument(help="folder of videos to upload")],
    count: Annotated[Optional[int], typer.Option(help="upload this many (cycling)")] = None,  # noqa: UP045
    concurrency: Annotated[int, typer.Option(help="parallel uploads")] = 8,
    prefix: Annotated[str, typer.Option(help="key prefix in the input bucket")] = "",
    data_dir: DataDirOpt = None,
) -> None:
    """Upload videos to the input bucket (like the coursework workload generator)."""
    from facereel.app.workload import upload

    settings = _settings(data_dir=data_dir)
    files = sorted(p for p in folder.iterdir() if p.is_file()
                   and p.suffix.lower() in MEDIA_EXTENSIONS) if folder.is_dir() else [folder]
    if not files:
        err.print(f"[red]error[/red]: no videos in {folder}")
        raise typer.Exit(code=2)
    total = count or len(files)
    items = [(f"{prefix}{files[i % len(files)].name}", files[i % len(files)])
             for i in range(total)]
    ports = build_ports(settings)
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


def register(app: typer.Typer) -> None:
    for command in (up, watch, worker, status, workload):
        app.command()(command)
    app.command("app-worker")(app_worker)
