"""`facereel status`: queue depths (pipeline stages and image requests), how many videos are
done, failed or dead-lettered, and the workers a running service reports."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

from facereel.config import Settings
from facereel.pipeline.definition import STAGE_NAMES
from facereel.pipeline.wiring import Ports, tier_queue
from facereel.ports.queue import QueueDepth

IMAGES = "images"  # the image tier's request queue (imagetier.client.REQUESTS)
ASK_TIMEOUT_S = 1.0
MAX_ANSWER = 1 << 20


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    queues: dict[str, QueueDepth]
    videos: dict[str, int]  # status -> count
    workers: dict[str, int] = field(default_factory=dict)  # tier -> running workers

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
            "workers": self.workers,
        }


def pipeline_status(ports: Ports, images: QueueDepth | None = None,
                    workers: dict[str, int] | None = None) -> PipelineStatus:
    queues = {s: ports.queues[s].depth() for s in STAGE_NAMES}
    if images is not None:
        queues[IMAGES] = images
    return PipelineStatus(queues, ports.metadata.video_counts(), dict(workers or {}))


def service_url(settings: Settings) -> str:
    """Where a `facereel up` with these settings answers (a wildcard address on loopback)."""
    host = settings.http.host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.http.port}"


def running_workers(settings: Settings) -> dict[str, int] | None:
    """The workers a running service counts (its /v1/status), or None when no service with
    these settings answers within a second."""
    if not settings.http.port:
        return None
    request = urllib.request.Request(f"{service_url(settings)}/v1/status")
    keys = settings.http.api_key_list
    if keys:
        request.add_header("Authorization", f"Bearer {keys[0]}")
    try:
        with urllib.request.urlopen(request, timeout=ASK_TIMEOUT_S) as answer:
            report = json.loads(answer.read(MAX_ANSWER))
    except (OSError, ValueError):  # nobody listening, refused, not our JSON
        return None
    workers = report.get("workers") if isinstance(report, dict) else None
    if not isinstance(workers, dict):
        return None
    return {str(k): int(v) for k, v in workers.items() if isinstance(v, int)}


def full_status(settings: Settings, ports: Ports) -> tuple[PipelineStatus, bool]:
    """Everything `facereel status` shows, and whether a running service answered."""
    images = tier_queue(settings.storage, IMAGES).depth()
    workers = running_workers(settings)
    return pipeline_status(ports, images, workers), workers is not None
