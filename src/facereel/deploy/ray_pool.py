"""A pool of Ray actors that outlives its actors and its nodes.

Each actor is a worker process holding the face models once; the pool keeps `inflight` calls
queued on each (with 2, an actor starts its next video the moment one ends, and no actor can
hold more than two videos hostage when it dies).

Failures, and why they are handled here rather than by Ray's task retries: an actor is
created with `max_restarts=-1` (Ray restarts it after a crash, or elsewhere after its node is
lost) but its work calls with `max_task_retries=0`. A call bound to a dead actor with retries
would wait for *that* actor's restart, which needs a free CPU that a cluster that just lost
a node may not have; instead the call fails at once (`ActorUnavailableError`,
`ActorDiedError`, or `ObjectLostError` for a result that lived on the lost node) and the
driver retries it on any live actor, counting attempts per input (`max_attempts`), so a video
that crashes every worker it meets ends as one error record. The lost actor is probed with a
`ready` call that does wait for its restart (`max_task_retries=-1`), and takes work again
once restarted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError

from facereel.deploy.ray_work import Call, CallFailure

log = logging.getLogger(__name__)
STUCK_S = 60.0


@dataclass(eq=False)
class _Slot:
    actor: Any
    probe: Any = None  # the pending `ready` call; None once the actor is ready
    node: str = ""
    calls: dict[Any, Call] = field(default_factory=dict)  # object ref -> call


class ActorPool:
    """`size` actors made by `make_actor`, each with up to `inflight` calls queued."""

    def __init__(self, make_actor: Callable[[], Any], size: int, inflight: int) -> None:
        self.inflight = inflight
        self.slots = [_Slot(make_actor()) for _ in range(size)]
        for slot in self.slots:
            self._probe(slot)
        self._idle_since = time.monotonic()  # since when no actor has been ready

    @staticmethod
    def _probe(slot: _Slot) -> None:
        slot.probe = slot.actor.ready.options(max_task_retries=-1).remote()

    def room(self) -> int:
        return sum(self.inflight - len(s.calls) for s in self.slots if s.probe is None)

    def busy(self) -> int:
        return sum(len(slot.calls) for slot in self.slots)

    def submit(self, call: Call) -> None:
        ready = [s for s in self.slots if s.probe is None and len(s.calls) < self.inflight]
        if not ready:
            raise RuntimeError("no room in the actor pool: check room() first")
        slot = min(ready, key=lambda s: len(s.calls))
        slot.calls[getattr(slot.actor, call.method).remote(*call.args)] = call

    def wait(self, timeout_s: float) -> list[tuple[Call, Any | CallFailure]]:
        """Calls answered within `timeout_s` (at least one, unless it passes)."""
        waiting = {ref: slot for slot in self.slots for ref in slot.calls}
        probes = {slot.probe: slot for slot in self.slots if slot.probe is not None}
        refs = [*waiting, *probes]
        if not refs:
            return []
        self._say_if_stuck(len(probes))
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready:  # and whatever else is done by now
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        answered: list[tuple[Call, Any | CallFailure]] = []
        for ref in ready:
            if ref in probes:
                self._ready(probes[ref], ref)
            else:
                slot = waiting[ref]
                answered.append((slot.calls.pop(ref), self._answer(slot, ref)))
        return answered

    def _say_if_stuck(self, waiting: int) -> None:
        """A cluster without room for any actor would wait silently: say so, now and then."""
        now = time.monotonic()
        if waiting < len(self.slots):
            self._idle_since = now
        elif now - self._idle_since > STUCK_S:
            log.warning("no actor is ready after %.0f s: the cluster has no room for one "
                        "(FACEREEL_RAY_CPUS_PER_ACTOR CPUs each)?", now - self._idle_since)
            self._idle_since = now

    def _ready(self, slot: _Slot, ref: Any) -> None:
        try:
            slot.node = str(ray.get(ref))
        except RayError as exc:  # killed for good, or cannot be created: keep trying
            log.warning("actor not ready (%s); probing again", type(exc).__name__)
            self._probe(slot)
            return
        slot.probe = None

    def _answer(self, slot: _Slot, ref: Any) -> Any | CallFailure:
        try:
            return ray.get(ref)
        except RayTaskError as exc:  # the method raised: a bug, not a lost worker
            return CallFailure("error", str(exc.cause if exc.cause is not None else exc))
        except RayError as exc:
            lost = f"{type(exc).__name__} on {slot.node or 'a node'}"
            if slot.probe is None:  # take no more work until it is back
                log.warning("actor on %s lost (%s); it takes work again once restarted",
                            slot.node, type(exc).__name__)
                self._probe(slot)
            return CallFailure("lost", lost)

    def nodes(self) -> list[str]:
        return sorted({slot.node for slot in self.slots if slot.node})

    def shutdown(self) -> None:
        for slot in self.slots:
            ray.kill(slot.actor, no_restart=True)
        self.slots = []
