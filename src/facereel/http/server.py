"""The HTTP tier inside `facereel up`: the API server (uvicorn in a thread) and the image web
tier behind it (request/response queues, app-tier worker processes sized by the autoscaler)."""

from __future__ import annotations

import functools
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from facereel.app.jobs import JobStore
from facereel.config import Settings
from facereel.errors import ConfigError
from facereel.http.auth import is_loopback
from facereel.http.metrics import LiveState, Metrics, ScalerState
from facereel.http.services import Services
from facereel.imagetier.autoscale import (
    Autoscaler,
    ScalingDecision,
    ScalingPolicy,
    WorkerProvider,
)
from facereel.imagetier.client import ImageTierClient, image_worker_main
from facereel.imagetier.providers import Ec2Provider, LocalProcessProvider, make_ec2
from facereel.pipeline.wiring import Ports, build_ports
from facereel.runtime.service import Supervisor
from facereel.runtime.watcher import Watcher

log = logging.getLogger(__name__)
AUTOSCALE_INTERVAL_S = 0.5


def check_exposure(settings: Settings) -> None:
    """Refuse to serve an open API (no keys) anywhere but on a loopback address."""
    if settings.port and not settings.api_key_list and not is_loopback(settings.host):
        raise ConfigError(f"refusing to listen on {settings.host} without API keys: set "
                          "FACEREEL_API_KEYS (comma-separated) or listen on 127.0.0.1")


def bind(settings: Settings) -> socket.socket:
    """The listening socket, bound now so a taken port is a clear error, not a dead thread."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when the
    # protocol says TCP; with 0 every response waited ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: "
                          f"{exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def scaling_policy(settings: Settings) -> ScalingPolicy:
    limit = settings.app_workers_limit
    return ScalingPolicy(min_workers=min(settings.app_workers_min, limit), max_workers=limit,
                         backlog_per_worker=settings.backlog_per_worker,
                         scale_in_delay_s=settings.scale_in_delay)


class AppTierProvider(WorkerProvider, Protocol):
    def stop_all(self, timeout_s: float = 30.0) -> None: ...


def app_tier_provider(settings: Settings) -> AppTierProvider:
    """Local worker processes, or EC2 instances (which run `facereel app-worker` and reach
    the same queues and buckets: use SQS and S3 with them)."""
    check_app_tier(settings)
    if settings.app_tier == "local":
        return LocalProcessProvider(functools.partial(image_worker_main, settings))
    client = make_ec2(settings.aws_region, settings.ec2_endpoint, settings.aws_access_key,
                      settings.aws_secret_key)
    return Ec2Provider(client, settings.ec2_image_id, settings.ec2_instance_type,
                       user_data=settings.ec2_user_data, subnet_id=settings.ec2_subnet_id,
                       key_name=settings.ec2_key_name)


def check_app_tier(settings: Settings) -> None:
    if settings.app_tier == "local":
        return
    if not settings.ec2_image_id:
        raise ConfigError("app_tier=ec2 needs FACEREEL_EC2_IMAGE_ID (the AMI of app-tier "
                          "instances)")
    if settings.queue_backend != "sqs":
        raise ConfigError("app_tier=ec2 needs FACEREEL_QUEUE_BACKEND=sqs: instances cannot "
                          "read this machine's SQLite queues")
    if settings.stage1.backend != "s3":
        raise ConfigError("app_tier=ec2 needs the stage-1 bucket on S3 "
                          "(FACEREEL_STAGE1__BACKEND=s3): instances fetch the images there")


@dataclass
class ImageTier:
    """App-tier workers, the autoscaler sizing them, and the web side's client."""

    client: ImageTierClient
    provider: AppTierProvider
    autoscaler: Autoscaler

    @classmethod
    def start(cls, settings: Settings, ports: Ports,
              on_decision: Callable[[ScalingDecision], None]) -> ImageTier:
        provider = app_tier_provider(settings)
        client = ImageTierClient(settings, ports)
        autoscaler = Autoscaler(provider, client.requests, scaling_policy(settings),
                                on_decision=on_decision)
        autoscaler.step()  # the minimum workers start loading models now, not at first request
        return cls(client, provider, autoscaler)

    def run(self, stop: threading.Event) -> None:
        self.autoscaler.run(stop, AUTOSCALE_INTERVAL_S)

    def close(self) -> None:
        self.provider.stop_all(timeout_s=30)
        self.client.close()


def build_services(settings: Settings, ports: Ports,
                   pipeline_workers: Callable[[], int]) -> tuple[Services, ImageTier]:
    metrics = Metrics()
    tier = ImageTier.start(settings, ports,
                           lambda d: metrics.scaling.labels(d.action).inc())
    services = Services(settings, ports, JobStore(settings.data_dir / "jobs.db", ports.metadata),
                        Watcher(settings, ports), metrics, images=tier.client,
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
        check_app_tier(settings)
        self.settings = settings
        self.socket = bind(settings)
        host, port = self.socket.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self, stop: threading.Event, supervisor: Supervisor | None = None) -> None:
        import uvicorn

        from facereel.http.app import create_app

        if supervisor is None:
            services, tier = build_services(self.settings, build_ports(self.settings),
                                            lambda: 0)
        else:  # the ports `up` already opened
            services, tier = build_services(self.settings, supervisor.ports, supervisor.alive)
        config = uvicorn.Config(create_app(services), log_config=None, access_log=False,
                                timeout_graceful_shutdown=10, limit_concurrency=4096)
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
