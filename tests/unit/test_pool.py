from __future__ import annotations

import pytest

from facereel.runtime.pool import PoolError, Start, TaskFailure, WorkerPool, start_method
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
    assert start_method("auto", threads=1) == "fork"
    assert start_method("auto", threads=2) == "forkserver", "a progress bar's thread runs"
    assert start_method("fork", threads=2) == "fork"
    assert start_method("forkserver", threads=1) == "forkserver"
