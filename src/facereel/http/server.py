"""The HTTP tier inside `facereel up`: the API server (uvicorn in a thread) in front of the
image tier (`imagetier.tier`) and the pipeline's ports."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from facereel.app.jobs import JobStore
from facereel.config import Settings
from facereel.errors import ConfigError
from facereel.http.auth import is_loopback
from facereel.http.connections import PendingHeaders, protocol_for
from facereel.http.metrics import LiveState, Metrics, ScalerState
from facereel.http.services import Services
from facereel.imagetier.tier import ImageTier, check_app_tier
from facereel.pipeline.wiring import Ports, build_ports
from facereel.runtime.service import Supervisor
from facereel.runtime.watcher import watcher_for

log = logging.getLogger(__name__)


def check_exposure(settings: Settings) -> None:
    """Refuse to serve an open API (no keys) anywhere but on a loopback address."""
    http = settings.http
    if http.port and not http.api_key_list and not is_loopback(http.host):
        raise ConfigError(f"refusing to listen on {http.host} without API keys: set "
                          "FACEREEL_API_KEYS (comma-separated) or listen on 127.0.0.1")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so a taken port is a clear error, not a dead thread."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when the
    # protocol says TCP; with 0 every response waited ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def build_services(settings: Settings, ports: Ports,
                   pipeline_workers: Callable[[], int]) -> tuple[Services, ImageTier]:
    metrics = Metrics()
    tier = ImageTier.start(settings, ports,
                           lambda d: metrics.scaling.labels(d.action).inc())
    jobs = JobStore(settings.data_dir / "jobs.db", ports.metadata)
    services = Services(settings, ports, jobs, watcher_for(settings, ports), metrics,
                        images=tier.client,
                        workers=lambda: {"pipeline": pipeline_workers(),
                                         "app": tier.provider.count()})
    metrics.watch(LiveState(ports, services.workers, tier.client.requests.depth))
    metrics.watch(ScalerState(tier.autoscaler))
    return services, tier


class HttpTier:
    """The API server and the image tier. Built in the main thread (so a refused address or a
    taken port fails `facereel up` at once, clearly); `run` serves until `stop` is set."""

    def __init__(self, settings: Settings) -> None:
        check_exposure(settings)
        check_app_tier(settings.image_tier, settings.storage)
        self.settings = settings
        self.socket = bind(settings.http.host, settings.http.port)
        host, port = self.socket.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self, stop: threading.Event, supervisor: Supervisor | None = None) -> None:
        import uvicorn

        from facereel.http.app import create_app

        if supervisor is None:
            ports = build_ports(self.settings.storage, self.settings.recognition.embedder)
            services, tier = build_services(self.settings, ports, lambda: 0)
        else:  # the ports `up` already opened
            services, tier = build_services(self.settings, supervisor.ports, supervisor.alive)
        # connections still sending their headers are bounded in number and time, so no
        # concurrency cap is needed (uvicorn's counted idle connections and answered 503)
        http = self.settings.http
        config = uvicorn.Config(create_app(services), log_config=None, access_log=False,
                                timeout_graceful_shutdown=10, limit_concurrency=None,
                                http=protocol_for(PendingHeaders(http.header_timeout)))
        server = uvicorn.Server(config)
        threads = [threading.Thread(target=server.run, kwargs={"sockets": [self.socket]},
                                    name="http"),
                   threading.Thread(target=tier.run, args=(stop,), name="autoscaler")]
        for thread in threads:
            thread.start()
        log.info("HTTP API listening on %s", self.url, extra={"url": self.url})
        try:
            stop.wait()
        finally:
            server.should_exit = True
            for thread in threads:
                thread.join(timeout=15)
            tier.close()
            self.socket.close()
