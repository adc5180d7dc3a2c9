"""A pool of worker processes that survives its workers.

Each worker builds its handler once (models load once per process) and then runs one task at a
time. A worker that crashes (even a segfault in native code) or overruns the per-task timeout is
replaced, and only the task it was running fails: the rest of the batch goes on.

Workers are forked from this process while it runs no other thread: they start in
milliseconds with what it has already imported. A process with threads (a progress bar's)
could be forked holding a lock another thread has taken, so then workers come from a fork
server: a clean process that imports `preload` once (~0.3 s of CPU and of waiting, which a
batch of short videos notices: 3 ms a video in a batch of 100).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.forkserver
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, Literal, TypeVar

from facereel.runtime.orphans import die_with_parent

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
HandlerFactory = Callable[[Any], Callable[[Any], Any]]
Start = Literal["auto", "fork", "forkserver"]  # auto: fork while single-threaded


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """Why a task produced no result: `crashed`, `timeout` or `error` (with the message)."""

    reason: str
    message: str


def _stop_fork_server() -> None:
    """Stop (and reap) the fork server once the workers are gone, so no idle process is left
    behind and the workers' CPU time is accounted to this process tree."""
    server = getattr(mp.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if callable(stop):
        stop()


def start_method(start: Start, threads: int) -> Literal["fork", "forkserver"]:
    """How to start a worker from a process running `threads` threads: fork from it when
    allowed and it runs no other thread."""
    if start == "fork" or (start == "auto" and threads == 1):
        return "fork"
    return "forkserver"


class PoolError(RuntimeError):
    """A worker could not start (its handler factory failed): the whole run cannot proceed."""


def _worker_main(conn: Connection, factory: HandlerFactory, argument: Any) -> None:
    die_with_parent()
    try:
        handler = factory(argument)
    except Exception as exc:
        conn.send(("fatal", None, f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None, None))
    while True:
        message = conn.recv()
        if message is None:
            return
        index, task = message
        try:
            conn.send(("done", index, handler(task)))
        except Exception as exc:  # reported to the parent as this task's failure
            conn.send(("done", index, TaskFailure("error", f"{type(exc).__name__}: {exc}")))


class _Worker:
    def __init__(self, context: Any, factory: HandlerFactory, argument: Any) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, factory, argument),
                                       daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[int, Any] | None = None
        self.started_at = 0.0

    def give(self, index: int, task: Any) -> None:
        self.task = (index, task)
        self.started_at = time.monotonic()
        self.conn.send((index, task))

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                self.process.kill()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class WorkerPool(Generic[T, R]):
    def __init__(self, workers: int, factory: HandlerFactory, argument: Any,
                 timeout_s: float = 900.0, preload: tuple[str, ...] = (),
                 start: Start = "auto") -> None:
        # The fork server, when used, is a clean process (no threads of ours) that imports
        # `preload` once, so each worker it forks starts without re-importing numpy, dlib and
        # onnxruntime.
        self._server = mp.get_context("forkserver")
        self._server.set_forkserver_preload(["facereel.runtime.orphans", *preload])
        self._start = start
        self._factory = factory
        self._argument = argument
        self._timeout_s = timeout_s
        self._size = max(1, workers)

    def run(self, tasks: Iterable[T]) -> Iterator[tuple[int, R | TaskFailure]]:
        """Yield `(index, result)` as tasks finish (not in input order)."""
        pending = deque(enumerate(tasks))
        workers = [self._spawn() for _ in range(min(self._size, len(pending)))]
        try:
            while pending or any(w.task is not None for w in workers):
                for worker in workers:
                    if worker.task is None and pending:
                        worker.give(*pending.popleft())
                yield from self._collect(workers)
        finally:
            for worker in workers:
                worker.stop(kill=worker.task is not None)
            _stop_fork_server()

    def _spawn(self) -> _Worker:
        return _Worker(self._context(), self._factory, self._argument)

    def _context(self) -> Any:
        # checked at every spawn: a replacement may come after a thread started
        if start_method(self._start, threading.active_count()) == "fork":
            return mp.get_context("fork")
        return self._server

    def _collect(self, workers: list[_Worker]) -> Iterator[tuple[int, R | TaskFailure]]:
        busy = [w for w in workers if w.task is not None]
        ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
        for position, worker in enumerate(list(workers)):
            if worker.task is None:
                continue
            if worker.conn in ready:
                outcome = self._receive(worker)
                if outcome is not None:
                    yield outcome
                    continue
            failure = self._failure_of(worker, ready)
            if failure is not None:
                index, task = worker.task
                log.error("worker %s failed on task %r: %s", worker.process.pid, task,
                          failure.message)
                worker.stop(kill=True)
                workers[position] = self._spawn()
                yield index, failure

    def _receive(self, worker: _Worker) -> tuple[int, R | TaskFailure] | None:
        try:
            kind, index, result = worker.conn.recv()
        except (EOFError, OSError):
            return None
        if kind == "ready":
            return None
        if kind == "fatal":
            raise PoolError(f"worker could not start: {result}")
        worker.task = None
        return index, result

    def _failure_of(self, worker: _Worker, ready: list[Any]) -> TaskFailure | None:
        if worker.task is None:
            return None
        if worker.process.sentinel in ready or not worker.process.is_alive():
            code = worker.process.exitcode
            return TaskFailure("crashed", f"worker process died (exit code {code})")
        if time.monotonic() - worker.started_at > self._timeout_s:
            return TaskFailure("timeout", f"took longer than {self._timeout_s:g} s")
        return None
