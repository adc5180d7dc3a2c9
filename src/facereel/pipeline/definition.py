"""The pipeline, declared once: its stages in order, with what each sends on and how urgent it
is. Hosts (the local worker pool, AWS Lambda, OpenFaaS, Ray) and provisioning read this list;
nothing else names the stages.

    split      an upload: short videos (and images) are analysed at once; a long video is cut
               into windows, one `analyze` message each
    analyze    one window of a long video; the last window in starts `recognize` (the join)
    recognize  embeds every part's face shots and decides who they are: the result document
    publish    the output bucket's <key>.json and seed files, and the video's metadata row
    remember   every face track of the video (known or not) kept in the face memory

A stage is a plain function `(delivery, context) -> [(next stage, body)]`: the host receives
a delivery, calls the stage, sends what it returns, then acknowledges. Every stage is
idempotent, so a repeated delivery (after a crash, say) never duplicates outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # the list is read by status and provisioning, which load no model
    from facereel.pipeline.context import StageContext
    from facereel.pipeline.stages import Delivery, Outgoing

    StageFunction = Callable[[Delivery, StageContext], Outgoing]

ENTRY = "split"  # an upload becomes a message of this stage
FUNCTIONS = "facereel.pipeline.stages"


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    next: tuple[str, ...]  # the stages it may send to
    priority: int  # workers take higher first: work in progress drains before new work
    old_names: tuple[str, ...] = ()  # queues of earlier releases still read

    @property
    def function(self) -> StageFunction:
        """The stage function (`pipeline.stages.<name>`), imported on first use."""
        return cast("StageFunction", getattr(importlib.import_module(FUNCTIONS), self.name))


STAGES: tuple[Stage, ...] = (
    Stage("split", ("analyze", "recognize", "publish"), priority=0),
    Stage("analyze", ("recognize", "publish"), priority=1),
    Stage("recognize", ("publish", "remember"), priority=2, old_names=("recognise",)),
    Stage("publish", (), priority=3),
    Stage("remember", (), priority=3),  # after publish (equal priorities keep this order)
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage(name: str) -> Stage:
    for candidate in STAGES:
        if name == candidate.name or name in candidate.old_names:
            return candidate
    raise KeyError(f"no stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def by_priority() -> list[Stage]:
    return sorted(STAGES, key=lambda s: -s.priority)


def run_stage(name: str, delivery: Delivery, context: StageContext) -> Outgoing:
    """Run one delivery through its stage; checks that it only sends where declared."""
    current = stage(name)
    outgoing = current.function(delivery, context)
    for next_stage, _ in outgoing:
        if next_stage not in current.next:
            raise RuntimeError(f"stage {current.name} sent to {next_stage}, not declared")
    return outgoing
