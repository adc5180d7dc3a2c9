"""The `facereel` command line: a thin adapter that parses input, builds Settings, calls the
library. Commands live by topic: `recognition` (recognize, enroll, gallery, metadata, grade),
`people` (gallery rename/merge), `pipeline` (up, watch, worker, app-worker, status, workload,
provision), `browse` (results, videos, dead-letters), `memory` (search, forget, memory
index/reembed/status), `strangers` (strangers, name/merge/split) and `models` (prepare).

The contract of `recognize --json` (one JSON object per input on stdout) is relied on by scripts.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperOption

from facereel.cli import browse, memory, models, people, pipeline, recognition, strangers
from facereel.cli.common import err
from facereel.errors import FacereelError


def _flags_take_no_value() -> None:
    """typer (0.29) shows a flag as `--json <bool>` in rich help, as if it took a value; its
    plain help already shows none. Show none in both."""
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()
app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Who is in this video? Recognize faces in videos and images.")
recognition.register(app)
people.register(recognition.gallery_app)
pipeline.register(app)
browse.register(app)
memory.register(app)
strangers.register(app)
models.register(app)


def main() -> None:
    """Run a command; a user error (a FacereelError from any command) is one line and exit
    code 2, never a traceback."""
    try:
        app()
    except FacereelError as exc:
        err.print(f"[red]error[/red] ({exc.code}): {escape(exc.message)}", soft_wrap=True)
        sys.exit(2)
