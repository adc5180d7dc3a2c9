"""Ray host: facereel's work as Ray actors, on this machine or a cluster.

    batch   `recognize --engine ray`: a driver streams the listing into a pool of
            `BatchWorker` actors (`deploy.ray_work`), which read inputs where they live,
            analyse the pipeline's windows and write each result where results go
            (`deploy.ray_driver` schedules, `deploy.ray_pool` survives lost actors and nodes)
    stages  `up --engine ray`: the pipeline's stage workers as actors on the same queues,
            as many as the backlog asks for (`deploy.ray_service`)

The same stage functions and core analysis run as on every other host; nothing here decides
who is in a video. Without an address a Ray is started on this machine for the run (bound to
127.0.0.1, with a small object store: results are small); with one, the driver joins that
cluster, whose workers cannot read this machine's folders, so those are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from facereel.errors import ConfigError, FacereelError

try:
    import ray
except ImportError as exc:  # the base install stays lean
    raise FacereelError("the Ray engine needs the ray extra (~240 MB): "
                        "pip install 'facereel[ray]'", "missing_extra") from exc

from facereel.app.batchwork import Judge
from facereel.app.sources import Location, Sources, on_this_machine
from facereel.config import Settings
from facereel.config.hosts import RaySettings
from facereel.deploy.ray_driver import BatchDriver, RunSummary
from facereel.deploy.ray_pool import ActorPool
from facereel.deploy.ray_work import BatchWorker, Outcome

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"


def node_label() -> str:
    """`<node id prefix>@<node address>` (nodes of a one-machine cluster share an address)."""
    node_id = ray.get_runtime_context().get_node_id()
    address = next((node["NodeManagerAddress"] for node in ray.nodes()
                    if node["NodeID"] == node_id), "?")
    return f"{node_id[:8]}@{address}"


@contextmanager
def connected(settings: RaySettings, cpus: int) -> Iterator[str]:
    """Ray for the length of a run: the cluster at `ray_address`, or a Ray started here with
    `cpus` CPUs (the local engine's worker count, for a fair comparison)."""
    try:
        if settings.ray_address:
            ray.init(address=settings.ray_address, logging_level=logging.WARNING)
            where = f"the Ray cluster at {settings.ray_address}"
        else:
            ray.init(num_cpus=cpus, object_store_memory=settings.ray_object_store_mb << 20,
                     include_dashboard=False, _node_ip_address=LOOPBACK,
                     logging_level=logging.WARNING)
            where = f"a local Ray ({cpus} CPUs)"
    except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
        what = f"join the Ray cluster at {settings.ray_address}" if settings.ray_address \
            else "start a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FacereelError(f"cannot {what}: {first}", "ray_unavailable") from exc
    try:
        yield where
    finally:
        ray.shutdown()


def actor_count(settings: RaySettings) -> int:
    """The pool's size: `ray_actors_max`, or as many actors as the cluster's CPUs hold."""
    if settings.ray_actors_max:
        return settings.ray_actors_max
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus / settings.ray_cpus_per_actor))


def refuse_local(settings: RaySettings, locations: list[Location]) -> None:
    """Joining a cluster, folders of this machine cannot be read or written by its workers
    (and the driver never moves video bytes)."""
    local = on_this_machine(locations)
    if settings.ray_address and local:
        names = ", ".join(str(location) for location in local)
        raise ConfigError(f"--address {settings.ray_address}: the cluster's workers cannot "
                          f"reach {names} on this machine; give s3://bucket/prefix instead")


def run_batch(sources: Sources, target: Location | None, settings: Settings, judge: Judge,
              on_result: Callable[[Outcome], None] | None = None,
              on_tick: Callable[[RunSummary, bool], None] | None = None,
              on_start: Callable[[str, int], None] | None = None) -> RunSummary:
    """Every input of `sources` through a pool of actors; results written to `target`."""
    refuse_local(settings.ray, [*sources.locations, *([target] if target else [])])
    with connected(settings.ray, settings.pipeline.worker_count) as where:
        size = actor_count(settings.ray)
        if on_start is not None:
            on_start(where, size)
        actor = ray.remote(BatchWorker).options(
            num_cpus=settings.ray.ray_cpus_per_actor, max_restarts=-1, max_task_retries=0)

        def make() -> Any:  # the judge by value: a restart elsewhere needs nothing of ours
            return actor.remote(settings, judge, target, node_label)

        pool = ActorPool(make, size, settings.ray.ray_inflight)
        try:
            driver = BatchDriver(pool, sources.items(), settings.storage.max_attempts,
                                 on_result, on_tick)
            return driver.run()
        finally:
            pool.shutdown()
