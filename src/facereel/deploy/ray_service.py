"""`facereel up --engine ray`: the pipeline's stage workers as Ray actors on the same queues
(SQLite on one machine, SQS on a cluster), as many as the backlog asks for.

Each actor is a `runtime.workers.Worker` (receive, run the stage, send, ack; heartbeats; the
queue's retries and dead letters): the same loop as a local worker process, run in slices of
`SLICE_S` seconds so the driver can stop an actor between two messages. The autoscaler is the
image tier's policy (`imagetier.autoscale`), fed the stage queues' combined backlog: it adds
actors at once and removes them only after the lower count has been enough for
`ray_scale_in_delay`. An actor asked to go finishes its slice (and its message) first. A lost
actor is restarted by Ray (`max_restarts=-1`); the message it held comes back after the
queue's visibility timeout, as on every host.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayError

from facereel.config import Settings
from facereel.deploy.ray import connected, node_label
from facereel.errors import ConfigError
from facereel.imagetier.autoscale import Autoscaler, ScalingPolicy
from facereel.logs import configure
from facereel.pipeline.wiring import Ports, build_ports
from facereel.ports.queue import QueueDepth
from facereel.runtime.watcher import watcher_for
from facereel.runtime.workers import Worker, stage_queues

log = logging.getLogger(__name__)
SLICE_S = 5.0  # an actor's run between two looks from the driver
STEP_S = 0.5


class Deadline:
    """A stop flag that sets itself after `seconds` (or when `stop` is set)."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def is_set(self) -> bool:
        return time.monotonic() >= self.until

    def wait(self, timeout: float) -> bool:
        time.sleep(max(0.0, min(timeout, self.until - time.monotonic())))
        return self.is_set()


class StageActor:
    """One pipeline worker, as an actor."""

    def __init__(self, settings: Settings, number: int) -> None:
        configure(settings.log_level, settings.log_format)
        self.worker = Worker(settings, number)
        self.node = node_label()

    def ready(self) -> str:
        return self.node

    def work(self, seconds: float) -> int:
        """Take messages for `seconds` (the current one is always finished); how many."""
        before = self.worker.processed
        self.worker.run(Deadline(seconds))
        return self.worker.processed - before


@dataclass(eq=False)
class _Member:
    actor: Any
    call: Any = None  # the running `work` slice
    leaving: bool = False
    done: int = 0


@dataclass
class RayStageProvider:
    """A `WorkerProvider` of stage actors, for the autoscaler."""

    settings: Settings
    members: list[_Member] = field(default_factory=list)
    started: int = 0

    def count(self) -> int:
        return sum(not m.leaving for m in self.members)

    def describe(self) -> str:
        return "pipeline stage actors on Ray"

    def scale_to(self, target: int) -> None:
        staying = [m for m in self.members if not m.leaving]
        for member in staying[target:]:  # the newest go first
            member.leaving = True
        factory = ray.remote(StageActor).options(
            num_cpus=self.settings.ray.ray_cpus_per_actor, max_restarts=-1, max_task_retries=0)
        for _ in range(target - len(staying)):
            self.started += 1
            self.members.append(_Member(factory.remote(self.settings, self.started)))

    def tick(self) -> None:
        """Keep every wanted actor working; let go of those asked to leave once idle."""
        for member in list(self.members):
            if member.call is not None:
                ready, _ = ray.wait([member.call], timeout=0)
                if not ready:
                    continue
                try:
                    member.done += int(ray.get(member.call))
                except RayError as exc:  # restarted by Ray; its message comes back
                    log.warning("a stage actor was lost (%s)", type(exc).__name__)
                member.call = None
            if member.leaving:
                ray.kill(member.actor, no_restart=True)
                self.members.remove(member)
            else:
                member.call = member.actor.work.remote(SLICE_S)

    def stop(self) -> None:
        """Let every actor finish its slice, then end them."""
        for member in self.members:
            member.leaving = True
        while self.members:
            self.tick()
            time.sleep(0.1)


class StageBacklog:
    """The stage queues' depths added up: what the autoscaler sizes the actors to."""

    def __init__(self, ports: Ports, names: list[str]) -> None:
        self.queues = [ports.queues[name] for name in names]

    def depth(self) -> QueueDepth:
        depths = [queue.depth() for queue in self.queues]
        return QueueDepth(*(sum(getattr(d, f) for d in depths)
                            for f in ("visible", "in_flight", "delayed", "dead")))


def refuse_node_local(settings: Settings) -> None:
    """On a cluster, stage actors on any node must reach every bucket, queue and table."""
    if not settings.ray.ray_address:
        return
    storage = settings.storage
    local = [f"the {which} bucket (a folder)" for which in ("input", "stage1", "output")
             if storage.bucket(which).backend == "local"]
    local += ["SQLite queues"] if storage.queue_backend == "sqlite" else []
    local += ["SQLite metadata"] if storage.metadata_backend == "sqlite" else []
    local += ["a gallery file"] if storage.gallery_location == "file" else []
    if local:
        raise ConfigError(f"--address {settings.ray.ray_address}: {', '.join(local)} live on "
                          "this machine only; a cluster needs S3 buckets, SQS queues and "
                          "DynamoDB (see README, Deploy on Ray)")


def _step(autoscaler: Autoscaler, provider: RayStageProvider) -> None:
    """One look at the backlog and the actors; a queue outage is logged and tried again (the
    service must outlive what it is there to absorb), a lost cluster is not."""
    try:
        autoscaler.step()
    except RayError:
        raise
    except Exception:
        log.exception("autoscale step failed; trying again")
    provider.tick()


def serve_on_ray(settings: Settings, stop: threading.Event,
                 on_ready: Callable[[ScalingPolicy], None] | None = None) -> RayStageProvider:
    """The watcher (in this process) and autoscaled stage actors, until `stop` is set."""
    refuse_node_local(settings)
    ports = build_ports(settings.storage, settings.recognition.embedder)
    watcher = threading.Thread(target=watcher_for(settings, ports).run, args=(stop,),
                               daemon=True, name="watcher")
    with connected(settings.ray, settings.pipeline.worker_count):
        config = settings.ray
        cpus = int(float(ray.cluster_resources().get("CPU", 1.0)) / config.ray_cpus_per_actor)
        most = config.ray_actors_max or max(1, cpus)
        policy = ScalingPolicy(min(config.ray_actors_min, most), most, config.ray_backlog_per_actor,
                               config.ray_scale_in_delay)
        provider = RayStageProvider(settings)
        backlog = StageBacklog(ports, stage_queues(settings.storage.queue_backend))
        autoscaler = Autoscaler(provider, backlog, policy)
        watcher.start()
        if on_ready is not None:
            on_ready(policy)
        try:
            while not stop.wait(STEP_S):
                _step(autoscaler, provider)
        finally:
            log.warning("stopping: letting in-flight work finish")
            provider.stop()
            watcher.join(timeout=30)
    return provider
