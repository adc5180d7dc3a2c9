"""`facereel models prepare`: build the converted models (the ResNet's ONNX graph, and any
other backend's) into a cache folder ahead of time, as an image build does, so functions
whose file system is read-only load them without converting or writing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from facereel.cli.common import err, fail, settings_from
from facereel.errors import FacereelError

models_app = typer.Typer(no_args_is_help=True, help="Prepare the face models.")


@models_app.command("prepare")
def prepare(
    cache_dir: Annotated[Optional[Path], typer.Option(  # noqa: UP045 - typer needs Optional
        "--cache-dir", help="where converted models go (default FACEREEL_CACHE_DIR, else "
        "~/.cache/facereel)")] = None,
) -> None:
    """Convert every model that needs converting into the cache folder (idempotent)."""
    from dataclasses import replace

    from facereel.core.faces import prepare_models

    settings = settings_from(cache_dir=cache_dir)
    config = settings.recognition.face_config()
    try:
        prepared = prepare_models(replace(config.options, cache_dir=settings.recognition
                                          .model_cache_dir))
    except FacereelError as exc:
        raise fail(exc) from None
    folder = settings.recognition.model_cache_dir
    for line in prepared:
        err.print(f"prepared {line}")
    for path in sorted(folder.glob("*.onnx")):
        print(f"{path}\t{path.stat().st_size}", flush=True)  # one per line, unwrapped


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
