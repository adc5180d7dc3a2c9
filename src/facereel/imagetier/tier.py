"""The image tier assembled: app-tier workers (local processes or EC2 instances), the
autoscaler sizing them from the request queue, and the web side's client. `facereel up`'s
HTTP tier starts one; nothing here knows about HTTP."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from facereel.config import Settings
from facereel.config.sections import ImageTierSettings, StorageSettings, secret
from facereel.errors import ConfigError
from facereel.imagetier.autoscale import (
    Autoscaler,
    ScalingDecision,
    ScalingPolicy,
    WorkerProvider,
)
from facereel.imagetier.client import ImageTierClient
from facereel.imagetier.providers import Ec2Provider, LocalProcessProvider, make_ec2
from facereel.imagetier.worker import image_worker_main
from facereel.pipeline.wiring import Ports

AUTOSCALE_INTERVAL_S = 0.5


def scaling_policy(tier: ImageTierSettings) -> ScalingPolicy:
    limit = tier.app_workers_limit
    return ScalingPolicy(min_workers=min(tier.app_workers_min, limit), max_workers=limit,
                         backlog_per_worker=tier.backlog_per_worker,
                         scale_in_delay_s=tier.scale_in_delay)


class AppTierProvider(WorkerProvider, Protocol):
    def stop_all(self, timeout_s: float = 30.0) -> None: ...


def check_app_tier(tier: ImageTierSettings, storage: StorageSettings) -> None:
    if tier.app_tier == "local":
        return
    if not tier.ec2_image_id:
        raise ConfigError("app_tier=ec2 needs FACEREEL_EC2_IMAGE_ID (the AMI of app-tier "
                          "instances)")
    if storage.queue_backend != "sqs":
        raise ConfigError("app_tier=ec2 needs FACEREEL_QUEUE_BACKEND=sqs: instances cannot "
                          "read this machine's SQLite queues")
    if storage.stage1.backend != "s3":
        raise ConfigError("app_tier=ec2 needs the stage-1 bucket on S3 "
                          "(FACEREEL_STAGE1__BACKEND=s3): instances fetch the images there")


def app_tier_provider(settings: Settings) -> AppTierProvider:
    """Local worker processes, or EC2 instances (which run `facereel app-worker` and reach
    the same queues and buckets: use SQS and S3 with them)."""
    tier, storage = settings.image_tier, settings.storage
    check_app_tier(tier, storage)
    if tier.app_tier == "local":
        return LocalProcessProvider(functools.partial(image_worker_main, settings))
    client = make_ec2(storage.aws_region, tier.ec2_endpoint, storage.aws_access_key,
                      secret(storage.aws_secret_key))
    return Ec2Provider(client, tier.ec2_image_id, tier.ec2_instance_type,
                       user_data=tier.ec2_user_data, subnet_id=tier.ec2_subnet_id,
                       key_name=tier.ec2_key_name)


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
        client = ImageTierClient(settings.storage, ports, settings.http.port)
        autoscaler = Autoscaler(provider, client.requests, scaling_policy(settings.image_tier),
                                on_decision=on_decision)
        autoscaler.step()  # the minimum workers start loading models now, not at first request
        return cls(client, provider, autoscaler)

    def run(self, stop: threading.Event) -> None:
        self.autoscaler.run(stop, AUTOSCALE_INTERVAL_S)

    def close(self) -> None:
        self.provider.stop_all(timeout_s=30)
        self.client.close()
