"""Ray for tests, on loopback only, stopped whatever happens.

Ray 2.60 binds a node to the machine's own network address unless told otherwise, turns token
authentication on for a Ray that `ray.init` starts (and then rejects a worker started without
the same setting), and keeps its session files and "current cluster" pointer under /tmp/ray.
So every process gets `RAY_AUTH_MODE=disabled`, nodes are bound to 127.0.0.1, and each test
has its own `RAY_TMPDIR`. Multi-node tests use `ray.cluster_utils.Cluster` (several raylets
on 127.0.0.1, one machine), with fast health checks so a killed node is declared dead in
about a second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OBJECT_STORE = 80 << 20  # results are small
HEALTH = {"health_check_period_ms": 300, "health_check_failure_threshold": 3,
          "health_check_initial_delay_ms": 0, "health_check_timeout_ms": 300}


@contextlib.contextmanager
def short_tmp() -> Iterator[Path]:
    """A temporary folder for Ray's sessions with a short path: its sockets live there, and
    a socket's path may not exceed 107 bytes (pytest's tmp_path is too deep)."""
    folder = Path(tempfile.mkdtemp(prefix="fr-ray-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ray_env(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> dict[str, str]:
    """The environment of every Ray process a test starts (this one included)."""
    values = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
              "RAY_TMPDIR": str(tmp), "RAY_USAGE_STATS_ENABLED": "0"}
    (tmp / "ray").mkdir(parents=True, exist_ok=True)  # Ray keeps its cluster pointer there
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@contextlib.contextmanager
def loopback_cluster(tmp: Path, head_cpus: int, worker_cpus: int) -> Iterator[Any]:
    """A head and one worker node on 127.0.0.1 (the worker is `cluster.worker`); every
    process of both is stopped at the end."""
    from ray.cluster_utils import Cluster

    common = {"object_store_memory": OBJECT_STORE, "node_ip_address": "127.0.0.1",
              "temp_dir": str(tmp)}
    cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args={
        **common, "num_cpus": head_cpus, "include_dashboard": False,
        "_system_config": HEALTH})
    try:
        cluster.worker = cluster.add_node(**common, num_cpus=worker_cpus)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


def raylet_pid(node: Any) -> int:
    return int(node.all_processes["raylet"][0].process.pid)


def kill_raylet(node: Any) -> None:
    """What losing a machine looks like to Ray: its raylet gone without a word (its workers
    follow it)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(raylet_pid(node), signal.SIGKILL)
