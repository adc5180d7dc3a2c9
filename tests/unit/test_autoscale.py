"""The scaling policy and the autoscaler, on a real SqliteQueue, a fake clock and a fake
provider (which only counts)."""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from facereel.errors import ConfigError
from facereel.imagetier.autoscale import (
    HOLD,
    SCALE_IN,
    SCALE_OUT,
    Autoscaler,
    ScalingPolicy,
)
from facereel.ports.queue.sqlite import SqliteQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def at(self, t: float) -> None:
        self.now = t


class FakeProvider:
    """Workers that start and stop at once; `fail` makes every call raise."""

    def __init__(self, running: int = 0) -> None:
        self.running = running
        self.calls: list[int] = []
        self.fail = False

    def count(self) -> int:
        if self.fail:
            raise RuntimeError("provider API unavailable")
        return self.running

    def scale_to(self, target: int) -> None:
        self.calls.append(target)
        self.running = target

    def describe(self) -> str:
        return "fake provider"


@pytest.fixture
def queue(tmp_path: Path) -> SqliteQueue:
    return SqliteQueue(tmp_path / "queue.db", "requests")


def send(queue: SqliteQueue, n: int) -> None:
    for i in range(n):
        queue.send({"id": f"r{i}", "key": f"in/{i}.jpg"})


def consume(queue: SqliteQueue, n: int) -> None:
    """Receive and acknowledge n requests, as workers would."""
    for message in queue.receive(n):
        queue.ack(message)


def make(queue: SqliteQueue, provider: FakeProvider | None = None,
         **policy: Any) -> tuple[Autoscaler, FakeProvider, FakeClock]:
    provider = provider or FakeProvider()
    clock = FakeClock()
    return Autoscaler(provider, queue, ScalingPolicy(**policy), clock), provider, clock


@pytest.mark.parametrize("kwargs", [
    {"min_workers": 3, "max_workers": 2},
    {"min_workers": -1},
    {"min_workers": 0, "max_workers": 0},
    {"backlog_per_worker": 0},
    {"backlog_per_worker": -2},
    {"backlog_per_worker": math.nan},
    {"backlog_per_worker": math.inf},
    {"scale_in_delay_s": -1},
    {"scale_in_delay_s": math.nan},
    {"scale_out_cooldown_s": -0.5},
    {"scale_out_cooldown_s": math.inf},
])
def test_policy_rejects_values_that_cannot_work(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        ScalingPolicy(**kwargs)
    assert caught.value.code == "config_error"


def test_policy_accepts_zero_delays_and_equal_bounds() -> None:
    policy = ScalingPolicy(min_workers=2, max_workers=2, scale_in_delay_s=0,
                           scale_out_cooldown_s=0)
    assert policy.desired(0) == policy.desired(1000) == 2


@pytest.mark.parametrize(("backlog", "expected"), [
    (0, 0), (1, 1), (4, 1), (5, 2), (12, 3), (20, 5), (21, 5), (10_000, 5),
])
def test_desired_is_ceil_of_backlog_per_worker_clamped(backlog: int, expected: int) -> None:
    assert ScalingPolicy(max_workers=5, backlog_per_worker=4).desired(backlog) == expected


def test_desired_is_at_least_one_with_any_backlog_and_respects_min() -> None:
    assert ScalingPolicy(max_workers=3, backlog_per_worker=1000).desired(1) == 1
    assert ScalingPolicy(max_workers=9, backlog_per_worker=0.5).desired(3) == 6
    assert ScalingPolicy(min_workers=2, max_workers=4).desired(0) == 2


def test_scales_out_at_once_to_what_the_backlog_needs(queue: SqliteQueue) -> None:
    autoscaler, provider, _ = make(queue, max_workers=5, backlog_per_worker=4)
    send(queue, 10)
    decision = autoscaler.step()
    assert provider.calls == [3]
    assert (decision.action, decision.backlog, decision.current, decision.desired) == (
        SCALE_OUT, 10, 0, 3)
    assert autoscaler.step().action == HOLD  # now enough: nothing more to do
    assert provider.calls == [3]


def test_scale_out_is_capped_at_max_workers(queue: SqliteQueue) -> None:
    autoscaler, provider, _ = make(queue, max_workers=3, backlog_per_worker=1)
    send(queue, 50)
    assert autoscaler.step().desired == 3
    assert provider.calls == [3]


def test_messages_in_flight_count_as_backlog(queue: SqliteQueue) -> None:
    autoscaler, provider, _ = make(queue, max_workers=4, backlog_per_worker=2)
    send(queue, 4)
    assert len(queue.receive(4)) == 4  # taken, not acknowledged: still work to do
    decision = autoscaler.step()
    assert (decision.backlog, decision.action) == (4, SCALE_OUT)
    assert provider.calls == [2]


def test_idle_queue_with_no_workers_holds(queue: SqliteQueue) -> None:
    autoscaler, provider, clock = make(queue)
    for t in (0, 10, 100):
        clock.at(t)
        assert autoscaler.step().action == HOLD
    assert provider.calls == []
    assert list(autoscaler.history) == []  # holds are not history


def test_scales_in_only_after_the_lower_demand_held_for_the_delay(queue: SqliteQueue) -> None:
    autoscaler, provider, clock = make(queue, max_workers=4, backlog_per_worker=4,
                                       scale_in_delay_s=30)
    send(queue, 8)
    assert autoscaler.step().action == SCALE_OUT  # t=0
    consume(queue, 8)
    clock.at(1)
    waiting = autoscaler.step()
    assert (waiting.action, waiting.desired) == (HOLD, 0)
    assert "waiting" in waiting.reason
    clock.at(30.9)
    assert autoscaler.step().action == HOLD
    assert provider.calls == [2]
    clock.at(31)  # demand has been 0 since t=1
    decision = autoscaler.step()
    assert (decision.action, decision.current) == (SCALE_IN, 2)
    assert provider.calls == [2, 0]


def test_a_returning_backlog_restarts_the_wait(queue: SqliteQueue) -> None:
    autoscaler, provider, clock = make(queue, max_workers=4, backlog_per_worker=4,
                                       scale_in_delay_s=30)
    send(queue, 8)
    autoscaler.step()  # t=0: scale out to 2
    consume(queue, 8)
    clock.at(1)
    autoscaler.step()  # demand 0 from t=1
    clock.at(20)
    send(queue, 8)
    assert autoscaler.step().action == HOLD  # 2 needed again, 2 running
    consume(queue, 8)
    for t in (21, 31, 50.9):  # t=31 would have scaled in without the second burst
        clock.at(t)
        assert autoscaler.step().action == HOLD
    clock.at(51)
    assert autoscaler.step().action == SCALE_IN
    assert provider.calls == [2, 0]


def test_scales_in_to_the_highest_count_needed_in_the_window(queue: SqliteQueue) -> None:
    autoscaler, provider, clock = make(queue, min_workers=1, max_workers=4,
                                       backlog_per_worker=1, scale_in_delay_s=10)
    send(queue, 4)
    autoscaler.step()  # t=0: 4 workers
    consume(queue, 2)
    clock.at(1)
    autoscaler.step()  # 2 needed from t=1
    consume(queue, 2)
    clock.at(5)
    autoscaler.step()  # 0 needed from t=5, but min_workers=1
    clock.at(11)
    assert autoscaler.step().action == SCALE_IN
    assert provider.running == 2  # 2 were still needed 10 s ago
    clock.at(15)
    assert autoscaler.step().action == SCALE_IN
    assert provider.calls == [4, 2, 1]  # down to min_workers, never below
    clock.at(100)
    assert autoscaler.step().action == HOLD


def test_does_not_scale_in_before_a_full_delay_was_observed(queue: SqliteQueue) -> None:
    """Workers found running at start (e.g. from a previous autoscaler) are kept for one
    delay: nothing is known about the demand before the autoscaler started."""
    autoscaler, provider, clock = make(queue, FakeProvider(running=3), scale_in_delay_s=5,
                                       max_workers=3)
    for t in (0, 4.9):
        clock.at(t)
        assert autoscaler.step().action == HOLD
    clock.at(5.1)
    assert autoscaler.step().action == SCALE_IN
    assert provider.calls == [0]


def test_scale_out_cooldown(queue: SqliteQueue) -> None:
    autoscaler, provider, clock = make(queue, max_workers=10, backlog_per_worker=1,
                                       scale_out_cooldown_s=10)
    send(queue, 2)
    assert autoscaler.step().action == SCALE_OUT  # t=0
    clock.at(5)
    send(queue, 2)
    held = autoscaler.step()
    assert (held.action, held.desired, held.current) == (HOLD, 4, 2)
    assert "cooldown" in held.reason
    assert autoscaler.last == held
    clock.at(10)
    assert autoscaler.step().action == SCALE_OUT
    assert provider.calls == [2, 4]


def test_history_records_actions_with_reasons(queue: SqliteQueue) -> None:
    autoscaler, _, clock = make(queue, max_workers=3, backlog_per_worker=4,
                                scale_in_delay_s=2)
    send(queue, 8)
    autoscaler.step()
    consume(queue, 8)
    for t in (1, 2, 3.5):
        clock.at(t)
        autoscaler.step()
    out, scale_in = autoscaler.history
    assert (out.action, out.at, out.backlog, out.desired) == (SCALE_OUT, 0, 8, 2)
    assert "backlog 8 needs 2 workers" in out.reason
    assert "scaling out to 2 workers" in out.reason
    assert (scale_in.action, scale_in.at, scale_in.current) == (SCALE_IN, 3.5, 2)
    assert "scaling in to 0 workers" in scale_in.reason
    assert autoscaler.last == scale_in


def test_logs_decisions_with_the_action_extra(queue: SqliteQueue,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="facereel.autoscale")
    autoscaler, _, _ = make(queue, max_workers=2)
    autoscaler.step()
    send(queue, 1)
    autoscaler.step()
    records = [r for r in caplog.records if r.name == "facereel.autoscale"]
    assert [(r.levelno, getattr(r, "action", None)) for r in records] == [
        (logging.DEBUG, HOLD), (logging.INFO, SCALE_OUT)]
    scale_out = records[1]
    assert (getattr(scale_out, "backlog", None), getattr(scale_out, "current", None),
            getattr(scale_out, "desired", None)) == (1, 0, 1)
    assert "scaling out to 1 worker" in scale_out.getMessage()


def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_run_survives_provider_errors_and_stops_on_the_event(
        queue: SqliteQueue, caplog: pytest.LogCaptureFixture) -> None:
    provider = FakeProvider()
    provider.fail = True
    autoscaler = Autoscaler(provider, queue, ScalingPolicy(max_workers=2))
    send(queue, 3)
    stop = threading.Event()
    thread = threading.Thread(target=autoscaler.run, args=(stop, 0.01), daemon=True)
    with caplog.at_level(logging.INFO, logger="facereel.autoscale"):
        thread.start()
        wait_for(lambda: autoscaler.errors >= 2)
        provider.fail = False  # the outage ends: the next step works
        wait_for(lambda: provider.calls == [1])
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert autoscaler.errors >= 2
    messages = [r.getMessage() for r in caplog.records if r.name == "facereel.autoscale"]
    assert any("autoscale step failed" in m for m in messages)
    assert messages[0] == "autoscaler started for fake provider"
    assert messages[-1] == "autoscaler stopped"


def test_run_returns_at_once_when_already_stopped(queue: SqliteQueue) -> None:
    autoscaler, provider, _ = make(queue)
    send(queue, 5)
    stop = threading.Event()
    stop.set()
    autoscaler.run(stop, interval_s=60)
    assert provider.calls == []
    assert autoscaler.last is None
