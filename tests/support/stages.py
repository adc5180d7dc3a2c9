"""Run the pipeline's stages in-process on real ports: what a host does, without processes."""

from __future__ import annotations

from facereel.config import Settings
from facereel.pipeline.context import StageContext
from facereel.pipeline.inline import run_inline
from facereel.pipeline.wiring import Ports, build_ports
from facereel.ports.queue import Body


def ports_of(settings: Settings) -> Ports:
    return build_ports(settings.storage, settings.recognition.embedder)


def context_of(settings: Settings, ports: Ports | None = None) -> StageContext:
    """A stage context that sees gallery changes at once (no staleness in tests)."""
    return StageContext(ports or ports_of(settings), settings.recognition, settings.pipeline, 0.0)


def run_through(context: StageContext, stage: str, body: Body) -> list[tuple[str, Body]]:
    """Every (stage, body) run, starting from one message, until no stage sends more."""
    return run_inline(context, stage, body)
