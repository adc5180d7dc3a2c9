from __future__ import annotations

import threading

import pytest

from facereel.runtime.pool import PoolError, Start, TaskFailure, WorkerPool
from tests.support.pool_tasks import make_handler


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_crashes_and_timeouts_cost_only_their_own_task(start: Start) -> None:
    tasks = ["a", "segfault", "b", "exit", "hang", "raise", "c", "d"]
    pool: WorkerPool[str, str] = WorkerPool(2, make_handler, "w", timeout_s=3.0, start=start)
    outcomes = dict(pool.run(tasks))

    assert sorted(outcomes) == list(range(len(tasks))), "exactly one outcome per task"
    for index, task in enumerate(tasks):
        outcome = outcomes[index]
        if task in ("a", "b", "c", "d"):
            assert outcome == f"w:{task}"
        else:
            assert isinstance(outcome, TaskFailure)
    assert outcomes[1].reason == "crashed"  # type: ignore[union-attr]
    assert outcomes[3].reason == "crashed"  # type: ignore[union-attr]
    assert outcomes[4].reason == "timeout"  # type: ignore[union-attr]
    assert outcomes[5].reason == "error"  # type: ignore[union-attr]
    assert "bad task" in outcomes[5].message  # type: ignore[union-attr]


def test_a_worker_that_cannot_start_stops_the_run_with_its_reason() -> None:
    pool: WorkerPool[str, str] = WorkerPool(1, make_handler, "broken", timeout_s=5.0)
    with pytest.raises(PoolError, match="cannot load models"):
        list(pool.run(["a"]))


def test_workers_are_forked_from_here_only_while_no_other_thread_runs() -> None:
    pool: WorkerPool[str, str] = WorkerPool(1, make_handler, "w")
    stop = threading.Event()
    if threading.active_count() != 1:
        pytest.skip("another test left a thread running")
    assert pool._context().get_start_method() == "fork"
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert pool._context().get_start_method() == "forkserver"
    finally:
        stop.set()
        other.join()
