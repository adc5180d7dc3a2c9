"""An app-tier worker of the image web tier: takes an image request from the request queue,
recognizes the image, answers on the requester's response queue, deletes the stored image.
`facereel up` starts these as processes sized by the autoscaler; `facereel app-worker` runs
one on its own (what an EC2 app-tier instance runs at boot)."""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from facereel.config import Settings
from facereel.errors import FacereelError
from facereel.imagetier.client import EMBED, LISTEN_S, REQUEST_FIELDS, REQUESTS
from facereel.logs import configure
from facereel.pipeline.wiring import Ports, build_ports, tier_queue
from facereel.ports.queue import Body, Queue
from facereel.runtime.orphans import die_with_parent

if TYPE_CHECKING:
    from facereel.core.recognize import Recognizer

log = logging.getLogger(__name__)


def _error(body: Body, code: str, message: str) -> dict[str, Any]:
    return {"video": body.get("filename"), "status": "error", "people": [],
            "error": {"code": code, "message": message}}


def answer_one(queue: Queue, recognizer: Callable[[], Recognizer], ports: Ports,
               replies: Callable[[str], Queue], listen_s: float) -> bool:
    """Take one request, answer it; False when there was none. The recognizer is asked for
    after the request arrives, so a person enrolled while we waited is already known."""
    messages = queue.receive(1, wait_s=listen_s)
    if not messages:
        return False
    message = messages[0]
    body = message.body
    if not all(isinstance(body.get(field), str) for field in REQUEST_FIELDS):
        log.error("dropping a malformed image request: %r", body)  # nobody to answer
        queue.ack(message)
        return True
    work = _embed if body.get("kind") == EMBED else _recognize
    replies(str(body["reply_to"])).send({"id": body["id"], **work(body, recognizer, ports)})
    queue.ack(message)
    ports.stage1.delete(str(body["key"]))
    return True


def _recognize(body: Body, recognizer: Callable[[], Recognizer], ports: Ports) -> Body:
    try:
        data = ports.stage1.get_bytes(str(body["key"]))
        result = recognizer().recognize_image_bytes(data, str(body["filename"])).to_dict()
    except FacereelError as exc:
        result = _error(body, exc.code, exc.message)
    except Exception as exc:  # answered at once: a retry would fail the same way, slowly
        log.exception("app-tier request %s failed", body.get("id"))
        result = _error(body, "internal", f"recognition failed: {exc}")
    people = result.get("people") or []
    return {"name": people[0]["person"] if people else "unknown", "result": result}


def _embed(body: Body, recognizer: Callable[[], Recognizer], ports: Ports) -> Body:
    """The embedding of the face to enrol from a photo (the largest face when several)."""
    from facereel.app.enroll import embed_photo_bytes

    try:
        data = ports.stage1.get_bytes(str(body["key"]))
        vector, note = embed_photo_bytes(recognizer().models, data, str(body["filename"]))
    except FacereelError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    except Exception as exc:
        log.exception("app-tier embed request %s failed", body.get("id"))
        return {"error": {"code": "internal", "message": f"embedding failed: {exc}"}}
    return {"vector": [float(v) for v in vector], "note": note}


def image_worker_main(settings: Settings, slot: int, stop: Any) -> None:
    """An app-tier worker process started by `facereel up`: Ctrl-C is the parent's."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure(settings.log_level, settings.log_format)
    serve_images(settings, slot, stop)


def serve_images(settings: Settings, slot: int, stop: Any) -> None:
    """Answer image requests until `stop` is set (or whoever started us is gone)."""
    from facereel.pipeline.context import StageContext
    from facereel.runtime.workers import UntilOrphaned

    storage = settings.storage
    ports = build_ports(storage, settings.recognition.embedder)
    context = StageContext(ports, settings.recognition, settings.pipeline,
                           storage.gallery_staleness)
    queue = tier_queue(storage, REQUESTS, interactive=True)
    context.recognizer()  # load the models before the first request
    log.info("app-tier worker %d ready", slot, extra={"slot": slot})
    until = UntilOrphaned(stop)
    replies = functools.lru_cache(maxsize=64)(
        functools.partial(tier_queue, storage, interactive=True))
    while not until.is_set():
        try:
            answer_one(queue, context.recognizer, ports, replies,
                       LISTEN_S[storage.queue_backend])
        except Exception:  # one bad request must not end the worker
            log.exception("app-tier worker %d failed on a request", slot)
