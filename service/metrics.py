"""Prometheus metrics of one app: requests, latency, batches, queue depth, translated tokens.

Each app has its own `CollectorRegistry`, so several apps (tests) never clash over metric names.
Every label value comes from a fixed set, so no client can grow /metrics: routes are labelled by their
template (`/translate`), never by the raw path, and unknown paths share `other`; methods outside the
standard ones share `other`; statuses are the ones the server sends (499: the client left first).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from carousel.service.queue import BatchReport


class ServiceMetrics:
    def __init__(self, queue_depths: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "carousel_http_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "carousel_http_request_duration_seconds", "HTTP request latency", ["route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.batch_sentences = Histogram(
            "carousel_batch_sentences", "Sentences per merged translate call", ["model"], registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.batch_requests = Histogram(
            "carousel_batch_requests", "Requests merged into one translate call", ["model"], registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )
        self.batch_seconds = Histogram(
            "carousel_batch_duration_seconds", "Time of one merged translate call", ["model"], registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.source_tokens = Counter(
            "carousel_source_tokens", "Source subword tokens translated (EOS included)", ["model"],
            registry=self.registry,
        )
        self.target_tokens = Counter(
            "carousel_target_tokens", "Target subword tokens produced, best hypothesis (EOS included)", ["model"],
            registry=self.registry,
        )
        self.registry.register(_QueueDepthCollector(queue_depths))

    def batch_observer(self, model: str) -> Callable[[BatchReport], None]:
        def observe(report: BatchReport) -> None:
            self.batch_sentences.labels(model).observe(report.sentences)
            self.batch_requests.labels(model).observe(report.requests)
            self.batch_seconds.labels(model).observe(report.seconds)
            self.source_tokens.labels(model).inc(report.source_tokens)
            self.target_tokens.labels(model).inc(report.target_tokens)

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _QueueDepthCollector:
    """Reads the queues at scrape time, so the gauge is never stale."""

    def __init__(self, queue_depths: Callable[[], dict[str, int]]):
        self.queue_depths = queue_depths

    def collect(self):
        gauge = GaugeMetricFamily("carousel_queue_depth", "Sentences waiting for translation", labels=["model"])
        for model, depth in self.queue_depths().items():
            gauge.add_metric([model], depth)
        yield gauge

    def describe(self):
        return []  # dynamic: do not collect at registration time


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"


class MetricsMiddleware:
    """Pure ASGI middleware counting every HTTP response (errors included) and timing it."""

    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.requests.labels(route, method_label(scope["method"]), status_label(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
