"""Prometheus metrics: requests and latencies, queue depths, workers, videos, failures and the
autoscaler's decisions. One registry per app (no process-wide globals); live values such as
queue depths are read when Prometheus scrapes, not kept up to date by hand."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from facereel.app.status import pipeline_status
from facereel.imagetier.autoscale import Autoscaler
from facereel.pipeline.wiring import Ports

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class LiveState(Collector):
    """Queue depths, video counts and worker counts, read at scrape time."""

    def __init__(self, ports: Ports, workers: Callable[[], dict[str, int]],
                 image_depth: Callable[[], Any] | None) -> None:
        self.ports = ports
        self.workers = workers
        self.image_depth = image_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("facereel_queue_messages", "Messages in a queue, by state",
                                  labels=["queue", "state"])
        videos = GaugeMetricFamily("facereel_videos", "Videos by pipeline status",
                                   labels=["status"])
        workers = GaugeMetricFamily("facereel_workers", "Worker processes, by tier",
                                    labels=["tier"])
        try:
            status = pipeline_status(self.ports)
            queues = dict(status.queues)
            if self.image_depth is not None:
                queues["images"] = self.image_depth()
            for name, d in queues.items():
                for state in ("visible", "in_flight", "delayed", "dead"):
                    depth.add_metric([name, state], getattr(d, state))
            for name, count in status.videos.items():
                videos.add_metric([name], count)
        except Exception:  # a scrape must not fail because storage is briefly unavailable
            log.warning("could not read pipeline state for metrics", exc_info=True)
        for tier, count in self.workers().items():
            workers.add_metric([tier], count)
        yield from (depth, videos, workers)


class ScalerState(Collector):
    """The autoscaler's last view: backlog, workers running and workers wanted."""

    def __init__(self, autoscaler: Autoscaler) -> None:
        self.autoscaler = autoscaler

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("facereel_autoscaler", "The image tier autoscaler's last step",
                                  labels=["value"])
        last = self.autoscaler.last
        if last is not None:
            gauge.add_metric(["backlog"], last.backlog)
            gauge.add_metric(["current"], last.current)
            gauge.add_metric(["desired"], last.desired)
        gauge.add_metric(["errors"], self.autoscaler.errors)
        yield gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("facereel_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("facereel_http_request_seconds", "HTTP request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.images = Counter("facereel_image_requests", "Image recognition requests",
                              ["outcome"], registry=self.registry)
        self.image_latency = Histogram("facereel_image_seconds", "Image request to answer",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.failures = Counter("facereel_failures", "Failures by kind", ["kind"],
                                registry=self.registry)
        self.scaling = Counter("facereel_autoscaler_decisions", "Autoscaler scaling actions",
                               ["action"], registry=self.registry)

    def watch(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)
