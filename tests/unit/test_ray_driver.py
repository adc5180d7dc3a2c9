"""The batch driver's scheduling, without a cluster: windows fan out and join in order,
lost calls are retried up to `max_attempts` and then end as one error record, and a listing
of a million keys goes through in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from facereel.app.sources import Location, Sources
from facereel.deploy.ray_driver import BatchDriver, RunSummary
from facereel.deploy.ray_work import Call, CallFailure, Outcome
from facereel.ports.objectstore import ObjectInfo
from tests.conftest import REPO_ROOT
from tests.support.driver_fakes import InlinePool, QuickWorker


class Listed:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list(self, prefix: str = "", settled_s: float = 0.0, *, ordered: bool = True,
             ) -> Iterator[ObjectInfo]:
        return iter([ObjectInfo(k, 1, "e", 0.0) for k in self.keys if k.startswith(prefix)])


def _run(keys: list[str], pool: InlinePool, attempts: int = 3) -> tuple[list[Outcome], RunSummary]:
    sources = Sources([Location(bucket="b", prefix="in/")], {"b": Listed(keys)})
    results: list[Outcome] = []
    summary = BatchDriver(pool, sources.items(), attempts, results.append).run()
    return results, summary


def test_a_long_input_fans_out_and_is_joined_once_in_window_order() -> None:
    pool = InlinePool(QuickWorker(windows=3), room=2)
    results, summary = _run(["in/long1.mp4", "in/a.mp4", "in/notes.txt", "in/.x.mp4"], pool)
    docs = {o.item.name: o.result for o in results}
    assert sorted(docs) == ["a.mp4", "long1.mp4"], "only media, no hidden files"
    assert docs["long1.mp4"] is not None and docs["long1.mp4"]["windows"] == [0.0, 1.0, 2.0]
    assert [c.method for c in pool.submitted].count("finish") == 1
    assert summary.done == summary.listed == 2
    assert summary.retried == 0


def test_lost_calls_are_retried_and_a_poison_input_ends_as_one_error_record() -> None:
    tries: dict[tuple[str, str, int], int] = {}

    def failing(call: Call) -> CallFailure | None:
        number = getattr(call.args[0], "number", -1)
        key = (call.item.video, call.method, number)
        tries[key] = tries.get(key, 0) + 1
        if call.item.video == "poison.mp4" and call.method == "analyze":
            return CallFailure("lost", "ActorDiedError on node-a")
        if call.item.video == "long2.mp4" and number == 1 and tries[key] == 1:
            return CallFailure("lost", "ActorUnavailableError on node-b")
        return None

    results, summary = _run(["in/poison.mp4", "in/long2.mp4", "in/c.mp4"],
                            InlinePool(QuickWorker(windows=2), failing=failing), attempts=3)
    docs = {o.item.video: o.result or {} for o in results}
    assert sorted(docs) == ["c.mp4", "long2.mp4", "poison.mp4"], "one record per input"
    assert docs["poison.mp4"]["status"] == "error"
    assert docs["poison.mp4"]["errors"] == ["worker_crashed"]
    assert tries[("poison.mp4", "analyze", 0)] == 3, "tried max_attempts times, then no more"
    assert docs["long2.mp4"]["status"] == "ok" and docs["long2.mp4"]["windows"] == [0.0, 1.0]
    assert summary.retried == 2 + 1
    assert summary.errors == 1 and summary.done == 3


def test_a_join_that_cannot_be_written_is_counted_lost() -> None:
    def failing(call: Call) -> CallFailure | None:
        return CallFailure("error", "disk full") if call.method == "finish" else None

    results, summary = _run(["in/long3.mp4", "in/d.mp4"],
                            InlinePool(QuickWorker(), failing=failing), attempts=2)
    assert [o.item.video for o in results] == ["d.mp4"]
    assert summary.lost == 1 and summary.retried == 1


@pytest.mark.slow
def test_a_million_keys_are_streamed_in_bounded_memory() -> None:
    """Holding the listing would take ~300 MB (a million items); the driver pulls a key only
    when the pool has room, so its peak stays within a few MB of where it started."""
    count = 1_000_000
    run = subprocess.run([sys.executable, "-m", "tests.support.driver_fakes", str(count)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(run.stdout)
    assert figures["listed"] == figures["done"] == count
    grown = (figures["peak"] - figures["before"]) / 2**20
    print(f"driver RSS: {figures['before'] / 2**20:.0f} MiB before, peak "
          f"{figures['peak'] / 2**20:.0f} MiB over {count} keys ({figures['seconds']:.1f} s)")
    assert grown < 32, f"the driver grew by {grown:.0f} MiB over {count} keys"
