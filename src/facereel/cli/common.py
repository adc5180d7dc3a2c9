"""What every `facereel` command shares: the consoles, the common options, building Settings
from the environment plus the command line, and turning a user error into one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from facereel.config import Settings, config_error
from facereel.errors import FacereelError
from facereel.logs import configure

# a line is never wrapped (an error is one line, whatever the width), and values in it are
# not re-coloured by guesswork (rich's highlighter would colour numbers and paths)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

DataDirOpt = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional here
    typer.Option("--data-dir", help="where embedded state lives (default ./facereel-data)"),
]
GalleryOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--gallery", "-g", help="gallery file (.npz; created when missing). "
                 "Default: DATA_DIR/gallery.npz. An 'encoding' pickle is read directly."),
]
WorkersOpt = Annotated[Optional[int], typer.Option(help="worker processes (default: cores)")]  # noqa: UP045


def emit_json(doc: object) -> None:
    """One JSON document on its own line of stdout, for programs: never wrapped, coloured or
    highlighted, whatever the terminal (rich would wrap it at the console's width)."""
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def settings_from(service: bool = False, **overrides: object) -> Settings:
    """Settings from the environment and `.env`, with the command line's options on top.
    A service logs what it does (INFO) unless told otherwise."""
    try:
        base = Settings()
        if service and "log_level" not in base.model_fields_set:
            overrides = {"log_level": "INFO", **overrides}
        settings = base.with_overrides(**overrides)
    except ValidationError as exc:
        given = [name for name, value in overrides.items() if value is not None]
        raise fail(config_error(exc, given)) from None
    configure(settings.log_level, settings.log_format)
    return settings


def fail(exc: FacereelError) -> typer.Exit:
    err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
    return typer.Exit(code=2)
