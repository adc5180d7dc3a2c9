"""`facereel up`: the watcher, a supervised pool of pipeline workers, the face index writer
(and, when given, an HTTP server), until Ctrl-C or SIGTERM, which let in-flight work finish
before exiting."""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from facereel.config import Settings
from facereel.pipeline.wiring import Ports, build_ports
from facereel.runtime.indexing import index_writer
from facereel.runtime.orphans import sole_service
from facereel.runtime.stopflag import StopFlag
from facereel.runtime.watcher import watcher_for
from facereel.runtime.workers import release_held, worker_main

log = logging.getLogger(__name__)
SUPERVISE_S = 0.5
DRAIN_TIMEOUT_S = 600.0


@dataclass
class Supervisor:
    """Keeps `count` worker processes alive; a crashed one is replaced and its message freed."""

    settings: Settings
    ports: Ports
    count: int
    context: Any = field(default_factory=lambda: mp.get_context("forkserver"))
    processes: dict[int, Any] = field(default_factory=dict)
    restarts: int = 0

    def __post_init__(self) -> None:
        self.context.set_forkserver_preload(["facereel.runtime.orphans",
                                             "facereel.runtime.workers"])
        self.stop_event = StopFlag(self.context)

    def start(self) -> None:
        for number in range(self.count):
            self._spawn(number)

    def _spawn(self, number: int) -> None:
        process = self.context.Process(target=worker_main, name=f"facereel-worker-{number}",
                                       args=(self.settings, number, self.stop_event))
        process.start()
        self.processes[number] = process

    def alive(self) -> int:
        return sum(process.is_alive() for process in self.processes.values())

    def check(self) -> None:
        """Replace workers that died (killed, crashed) while we are not stopping."""
        for number, process in list(self.processes.items()):
            if process.is_alive() or self.stop_event.is_set():
                continue
            log.warning("worker %d exited (code %s); restarting it", number, process.exitcode)
            release_held(self.settings.data_dir / "run", self.ports, number)
            self.restarts += 1
            self._spawn(number)

    def stop(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Ask workers to finish their current message and exit; wait for them."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


Extra = Callable[[threading.Event, Supervisor], None]


def run_up(settings: Settings, workers: int, extra: Extra | None = None,
           on_ready: Callable[[], None] | None = None) -> None:
    """Run the watcher, the workers and `extra` (the HTTP tier) until interrupted. A part that
    dies stops the whole service (drained as on Ctrl-C) and is reported, never left silent.
    One `up` per data directory at a time."""
    with sole_service(settings.data_dir):
        _serve(settings, workers, extra, on_ready)


def _serve(settings: Settings, workers: int, extra: Extra | None,
           on_ready: Callable[[], None] | None) -> None:
    ports = build_ports(settings.storage, settings.recognition.embedder)
    stop = threading.Event()
    failures: list[BaseException] = []
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    supervisor = Supervisor(settings, ports, workers)
    supervisor.start()
    parts: list[Callable[[threading.Event], None]] = [watcher_for(settings, ports).run]
    writer = index_writer(settings, ports)  # the face index snapshot's single writer
    if writer is not None:
        parts.append(writer)
    if extra is not None:
        parts.append(functools.partial(_call_extra, extra, supervisor=supervisor))
    threads = [threading.Thread(target=_guarded, args=(part, stop, failures), daemon=True,
                                name=f"part-{number}") for number, part in enumerate(parts)]
    for thread in threads:
        thread.start()
    if on_ready is not None:
        on_ready()
    try:
        while not stop.wait(SUPERVISE_S):
            supervisor.check()
    finally:
        log.warning("stopping: letting in-flight work finish (Ctrl-C again to force)")
        for sig, handler in previous.items():
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else handler)
        supervisor.stop()
        for thread in threads:
            thread.join(timeout=30)
    if failures:
        raise failures[0]


def _call_extra(extra: Extra, stop: threading.Event, supervisor: Supervisor) -> None:
    extra(stop, supervisor)


def _guarded(part: Callable[[threading.Event], None], stop: threading.Event,
             failures: list[BaseException]) -> None:
    try:
        part(stop)
    except BaseException as exc:
        log.exception("a part of facereel up failed; stopping")
        failures.append(exc)
        stop.set()
