"""Shutting down after a worker was killed while idle: with multiprocessing.Event, `set()`
then blocked forever (the event still counted the dead process as a sleeper to wake)."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

from facereel.imagetier.providers import LocalProcessProvider
from facereel.runtime.stopflag import StopFlag
from tests.support.provider_workers import long_waiter

DEADLINE_S = 60.0  # detects a hang; not a performance bound


def wait_for_pids(folder: Path, count: int) -> list[int]:
    deadline = time.monotonic() + DEADLINE_S
    while len(pids := sorted(folder.glob("*.pid"))) < count:
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.05)
    return [int(p.read_text()) for p in pids]


def test_a_flag_set_by_the_parent_ends_the_wait_of_a_child(tmp_path: Path) -> None:
    context = mp.get_context("forkserver")
    flag = StopFlag(context)
    child = context.Process(target=long_waiter, args=(tmp_path, 0, flag))
    child.start()
    wait_for_pids(tmp_path, 1)
    assert not flag.wait(0.1)
    flag.set()
    child.join(DEADLINE_S)
    assert child.exitcode == 0


def test_stopping_after_an_idle_worker_was_killed_does_not_hang(tmp_path: Path) -> None:
    provider = LocalProcessProvider(functools.partial(long_waiter, tmp_path))
    provider.scale_to(2)
    victim = wait_for_pids(tmp_path, 2)[0]
    time.sleep(0.2)  # let it settle into its wait
    os.kill(victim, signal.SIGKILL)
    stopper = threading.Thread(target=provider.stop_all, kwargs={"timeout_s": 30})
    stopper.start()
    stopper.join(DEADLINE_S)
    assert not stopper.is_alive(), "stop_all hung after a worker died while waiting"
    assert provider.count() == 0
