"""`facereel status`: queue depths and how many videos are done, failed or dead-lettered."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from facereel.pipeline.definition import STAGE_NAMES
from facereel.pipeline.wiring import Ports
from facereel.ports.queue import QueueDepth


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    queues: dict[str, QueueDepth]
    videos: dict[str, int]  # status -> count

    @property
    def pending(self) -> int:
        return sum(d.visible + d.in_flight + d.delayed for d in self.queues.values())

    @property
    def dead(self) -> int:
        return sum(d.dead for d in self.queues.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "queues": {name: asdict(d) for name, d in self.queues.items()},
            "videos": self.videos,
            "pending": self.pending,
            "dead_letters": self.dead,
        }


def pipeline_status(ports: Ports) -> PipelineStatus:
    return PipelineStatus({s: ports.queues[s].depth() for s in STAGE_NAMES},
                          ports.metadata.video_counts())
