"""Autoscaler: size the app tier to the request queue's backlog.

One policy drives any `WorkerProvider` (local processes, cloud instances). Each `step` reads
the queue depth and computes a desired worker count; adding workers happens at once (a burst
must not wait), removing them only once a lower count has been enough for `scale_in_delay_s`
without interruption. That asymmetry is deliberate: a worker that is stopped and needed again
seconds later costs a cold start (model load, instance boot) on every request burst, while a
worker kept a little too long only costs idle time.

The scale-in rule is a sliding window: after `scale_in_delay_s`, the tier shrinks to the
*highest* count desired during the last `scale_in_delay_s` seconds, so a backlog that comes
back restarts the wait. Metrics are exported elsewhere from `last` and `history`, which keeps
this module free of web and Prometheus imports.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from facereel.errors import ConfigError
from facereel.ports.queue import QueueDepth

log = logging.getLogger("facereel.autoscale")

HISTORY_SIZE = 1000
SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"
HOLD = "hold"


class WorkerProvider(Protocol):
    """Something that runs app-tier workers: local processes, cloud instances..."""

    def count(self) -> int:
        """Workers running or starting (not those already asked to stop)."""
        ...

    def scale_to(self, target: int) -> None:
        """Start or stop workers so that `count()` becomes `target`."""
        ...

    def describe(self) -> str:
        """A short human description, for logs and status pages."""
        ...


class Backlog(Protocol):
    """What the autoscaler watches: a queue, or several added up (the pipeline's stages)."""

    def depth(self) -> QueueDepth: ...


@dataclass(frozen=True)
class ScalingPolicy:
    min_workers: int = 0
    max_workers: int = 2
    backlog_per_worker: float = 4.0  # queued requests one worker is expected to absorb
    scale_in_delay_s: float = 30.0  # a lower desired count must hold this long
    scale_out_cooldown_s: float = 0.0  # minimum time between two scale-outs

    def __post_init__(self) -> None:
        if not 0 <= self.min_workers <= self.max_workers:
            raise ConfigError(f"autoscaling needs 0 <= min_workers <= max_workers, got "
                              f"min_workers={self.min_workers}, max_workers={self.max_workers}")
        if self.max_workers < 1:
            raise ConfigError(f"max_workers must be at least 1, got {self.max_workers}")
        if not (math.isfinite(self.backlog_per_worker) and self.backlog_per_worker > 0):
            raise ConfigError(f"backlog_per_worker must be a positive number, got "
                              f"{self.backlog_per_worker}")
        for name in ("scale_in_delay_s", "scale_out_cooldown_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {value}")

    def desired(self, backlog: int) -> int:
        """Workers needed for `backlog` queued requests, within [min, max]; never 0 while
        anything is queued, or a request could wait forever on an empty tier."""
        needed = math.ceil(backlog / self.backlog_per_worker) if backlog > 0 else 0
        if backlog > 0:
            needed = max(needed, 1)
        return max(self.min_workers, min(self.max_workers, needed))


@dataclass(frozen=True)
class ScalingDecision:
    at: float  # the autoscaler's clock (monotonic by default), not wall time
    backlog: int  # visible + in_flight + delayed
    current: int  # workers counted before acting
    desired: int  # what the backlog asks for now (a scale-in may stop above it)
    action: str  # "scale_out" | "scale_in" | "hold"
    reason: str


class _DesiredWindow:
    """The desired count as a step function over the last `span_s` seconds.

    Only changes are stored (plus the one in effect at the window's start), so memory is
    bounded by how often the desired count changes, not by how often `step` runs."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._changes: deque[tuple[float, int]] = deque()

    def record(self, now: float, desired: int) -> None:
        if not self._changes or self._changes[-1][1] != desired:
            self._changes.append((now, desired))
        start = now - self.span_s
        while len(self._changes) >= 2 and self._changes[1][0] <= start:
            self._changes.popleft()

    def held_max(self, now: float) -> int | None:
        """Highest desired count over the whole window; None until it has been observed
        for `span_s` (just after start we do not know what came before)."""
        if not self._changes or self._changes[0][0] > now - self.span_s:
            return None
        return max(value for _, value in self._changes)

    def ready_in(self, now: float, current: int) -> float:
        """Seconds until every count in the window is below `current`."""
        below_since = self._changes[0][0]
        for (_, value), (after, _) in pairwise(self._changes):
            if value >= current:
                below_since = after
        return max(0.0, below_since + self.span_s - now)


def _workers(count: int) -> str:
    return f"{count} worker" if count == 1 else f"{count} workers"


class Autoscaler:
    def __init__(self, provider: WorkerProvider, queue: Backlog, policy: ScalingPolicy,
                 clock: Callable[[], float] = time.monotonic,
                 on_decision: Callable[[ScalingDecision], None] | None = None) -> None:
        self.provider = provider
        self.on_decision = on_decision  # told of every scale-out and scale-in (metrics)
        self.queue = queue
        self.policy = policy
        self.history: deque[ScalingDecision] = deque(maxlen=HISTORY_SIZE)
        self.last: ScalingDecision | None = None
        self.errors = 0  # failed steps (queue or provider errors), for metrics
        self._clock = clock
        self._window = _DesiredWindow(policy.scale_in_delay_s)
        self._last_scale_out: float | None = None

    def step(self) -> ScalingDecision:
        """Look at the queue once, scale if the policy says so, and say why."""
        now = self._clock()
        depth = self.queue.depth()
        backlog = depth.visible + depth.in_flight + depth.delayed
        current = self.provider.count()
        desired = self.policy.desired(backlog)
        self._window.record(now, desired)
        action, target, why = self._plan(now, current, desired)
        if target != current:
            self.provider.scale_to(target)
            if action == SCALE_OUT:
                self._last_scale_out = now
        reason = (f"backlog {backlog} needs {_workers(desired)} "
                  f"({self.policy.backlog_per_worker:g} per worker, "
                  f"{self.policy.min_workers}..{self.policy.max_workers}), "
                  f"{current} running: {why}")
        decision = ScalingDecision(now, backlog, current, desired, action, reason)
        self._remember(decision)
        return decision

    def _plan(self, now: float, current: int, desired: int) -> tuple[str, int, str]:
        """(action, target count, explanation) for this step."""
        if desired > current:
            return self._plan_out(now, current, desired)
        if desired == current:
            return HOLD, current, "holding"
        held = self._window.held_max(now)
        delay = self.policy.scale_in_delay_s
        if held is None or held >= current:
            left = self._window.ready_in(now, current)
            return HOLD, current, (f"waiting for the lower count to hold for {delay:g} s "
                                   f"({left:.1f} s left)")
        return SCALE_IN, held, (f"scaling in to {_workers(held)}: no more were needed "
                                f"during the last {delay:g} s")

    def _plan_out(self, now: float, current: int, desired: int) -> tuple[str, int, str]:
        cooldown = self.policy.scale_out_cooldown_s
        if self._last_scale_out is not None and now - self._last_scale_out < cooldown:
            left = cooldown - (now - self._last_scale_out)
            return HOLD, current, f"scale-out cooldown ({left:.1f} s left)"
        return SCALE_OUT, desired, f"scaling out to {_workers(desired)}"

    def _remember(self, decision: ScalingDecision) -> None:
        self.last = decision
        fields = {"backlog": decision.backlog, "current": decision.current,
                  "desired": decision.desired, "action": decision.action}
        if decision.action == HOLD:  # every second while idle: only for debugging
            log.debug("autoscale hold: %s", decision.reason, extra=fields)
            return
        self.history.append(decision)
        if self.on_decision is not None:
            self.on_decision(decision)
        log.info("autoscale %s: %s", decision.action, decision.reason, extra=fields)

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Step every `interval_s` until `stop` is set. A failing queue or provider (network
        blip, API throttling) is logged and retried next interval: the autoscaler must
        outlive the outages it is there to absorb."""
        log.info("autoscaler started for %s", self.provider.describe())
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                self.errors += 1
                log.exception("autoscale step failed; retrying in %g s", interval_s)
            stop.wait(interval_s)
        log.info("autoscaler stopped")
