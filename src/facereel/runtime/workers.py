"""Pipeline workers: processes that take messages from the stage queues and run the stages.

Any worker runs any stage (publish first, then recognize, then analyze, then split, so work in
progress drains before new work starts). While a stage runs, a heartbeat keeps its message
hidden; when it succeeds, the next stage's message is sent *before* the ack, so a crash in
between can only repeat work (which the idempotent stages absorb), never lose it. A failure
sends the message back with exponential backoff; after `max_attempts` deliveries it is
dead-lettered and the video's status says so. A worker that is killed leaves a note of what
it held, so the supervisor can hand that message back at once instead of waiting for the
visibility timeout.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from facereel.config import Settings
from facereel.config.sections import PipelineSettings
from facereel.logs import configure
from facereel.pipeline.context import StageContext
from facereel.pipeline.definition import by_priority, run_stage, stage
from facereel.pipeline.inline import correlation_id
from facereel.pipeline.stages import Delivery
from facereel.pipeline.wiring import Ports, build_ports
from facereel.ports.metadata import VideoRecord
from facereel.ports.queue import Message, Queue, backoff_s
from facereel.runtime.orphans import die_with_parent

log = logging.getLogger(__name__)
# Longest pause between looks at empty queues: a SQLite look costs ~0.1 ms, so stay
# responsive; an SQS look is a billed request, so look less often when idle.
IDLE_MAX_S = {"sqlite": 0.25, "sqs": 2.0}


def holding_file(run_dir: Path, worker: int) -> Path:
    return run_dir / f"worker-{worker}.json"


def stage_queues(queue_backend: str) -> list[str]:
    """The queues a worker reads, most urgent first; a stage's queue under an earlier name is
    read too (SQLite only: on SQS it would be a billed request per look, for a queue that
    `facereel provision` reports instead)."""
    names: list[str] = []
    for current in by_priority():
        names.append(current.name)
        if queue_backend == "sqlite":
            names += list(current.old_names)
    return names


class Heartbeat:
    """Extends a message's visibility every third of the timeout while its stage runs."""

    def __init__(self, queue: Queue, message: Message, visibility_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(queue, message, visibility_s), daemon=True)

    def _beat(self, queue: Queue, message: Message, visibility_s: float) -> None:
        while not self._stop.wait(visibility_s / 3):
            try:
                queue.extend(message, visibility_s)
            except Exception:  # the next beat tries again; the message stays safe either way
                log.warning("could not extend visibility of %s", message.id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Worker:
    """Takes messages from the stage queues (publish first, so work in progress drains before
    new work starts) and runs their stage."""

    def __init__(self, settings: Settings, number: int, ports: Ports | None = None) -> None:
        self.pipeline: PipelineSettings = settings.pipeline
        self.number = number
        self.ports = ports or build_ports(settings.storage, settings.recognition.embedder)
        self.context = StageContext(self.ports, settings.recognition, settings.pipeline,
                                    settings.storage.gallery_staleness)
        self.holding = holding_file(settings.data_dir / "run", number)
        self.queues = stage_queues(settings.storage.queue_backend)
        self.idle_max_s = IDLE_MAX_S[settings.storage.queue_backend]
        self.processed = 0

    def next_message(self) -> tuple[str, Message] | None:
        for name in self.queues:
            messages = self.ports.queues[name].receive(1)
            if messages:
                return name, messages[0]
        return None

    def handle(self, queue_name: str, message: Message) -> None:
        queue = self.ports.queues[queue_name]
        name = stage(queue_name).name
        self._note(queue_name, message)
        started = time.perf_counter()
        try:
            with Heartbeat(queue, message, queue.visibility_s):
                outgoing = run_stage(name, Delivery(message.body, message.attempts),
                                     self.context)
            for next_stage, body in outgoing:
                self.ports.queues[next_stage].send(body)
            queue.ack(message)
            self.processed += 1
            log.info("%s done", name, extra={
                "stage": name, "key": message.body.get("key"),
                "correlation_id": correlation_id(message.body),
                "seconds": round(time.perf_counter() - started, 3)})
        except Exception as exc:
            self._failed(name, queue, message, exc)
        finally:
            self.holding.unlink(missing_ok=True)

    def _failed(self, name: str, queue: Queue, message: Message, exc: Exception) -> None:
        key = str(message.body.get("key", ""))
        last = message.attempts >= queue.max_attempts
        log.error("%s failed on %s (attempt %d): %s", name, key, message.attempts, exc,
                  extra={"stage": name, "key": key, "attempt": message.attempts,
                         "correlation_id": correlation_id(message.body)})
        if last:  # the queue will dead-letter it: say so where people look
            self.ports.metadata.put_video(VideoRecord(
                key, str(message.body.get("etag", "")), "dead", time.time(),
                error_code=getattr(exc, "code", "stage_failed"),
                error_message=f"{name}: {exc}"))
        delay = backoff_s(message.attempts, self.pipeline.retry_backoff)
        queue.retry(message, 0.0 if last else delay)

    def _note(self, queue_name: str, message: Message) -> None:
        self.holding.parent.mkdir(parents=True, exist_ok=True)
        note = {"stage": queue_name, "id": message.id, "receipt": message.receipt,
                "attempts": message.attempts, "body": message.body, "pid": os.getpid()}
        self.holding.write_text(json.dumps(note), encoding="utf-8")

    def run(self, stop: threading.Event | Any) -> None:
        idle = 0.05
        while not stop.is_set():
            found = self.next_message()
            if found is None:
                stop.wait(idle)
                idle = min(self.idle_max_s, idle * 2)
                continue
            idle = 0.05
            self.handle(*found)


def release_held(run_dir: Path, ports: Ports, worker: int) -> None:
    """Hand back, at once, the message a dead worker was holding (if it left a note)."""
    path = holding_file(run_dir, worker)
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    message = Message(note["id"], note["body"], note["receipt"], note["attempts"])
    ports.queues[note["stage"]].retry(message, 0.0)
    path.unlink(missing_ok=True)
    log.warning("worker %d died holding %s; handed it back", worker, note["body"].get("key"))


class UntilOrphaned:
    """A stop event that also reads as set once the process that started this one is gone
    (`facereel up` killed with SIGKILL takes its fork server with it): a worker finishes its
    message and exits instead of outliving the service."""

    def __init__(self, stop: Any) -> None:
        self.stop = stop
        self.parent = os.getppid()

    def is_set(self) -> bool:
        return bool(self.stop.is_set()) or os.getppid() != self.parent

    def wait(self, timeout: float) -> bool:
        return bool(self.stop.wait(timeout)) or self.is_set()


def worker_main(settings: Settings, number: int, stop: Any) -> None:
    """Entry point of a worker process: Ctrl-C is the supervisor's to handle, not ours."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure(settings.log_level, settings.log_format)
    Worker(settings, number).run(UntilOrphaned(stop))
