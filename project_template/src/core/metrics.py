"""Prometheus metrics: HTTP requests, the database pool, and (from the cache) hits and misses.

Labels stay bounded: the route template, the status class (`2xx`), known methods, the module.
In one process a request is recorded as plain arithmetic and turned into Prometheus families
only when scraped (`prometheus_client`'s objects lock on every update); with
`PROMETHEUS_MULTIPROC_DIR` (several workers) those objects keep the values in its files.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from src.core.config import DatabaseSettings

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LABELS = ("method", "route", "status", "module")
UNMATCHED = "<unmatched>"
# Seconds; a trivial endpoint answers in well under a millisecond.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HELP = {
    "requests": "HTTP requests answered",
    "latency": "Time to answer an HTTP request",
    "errors": "HTTP requests answered 5xx or failed unhandled",
    # The route is only known once routing ran, so in-flight requests are counted per method.
    "in_flight": "HTTP requests being served",
}

DB_POOL_IN_USE = Gauge(
    "db_pool_connections_in_use", "Database connections checked out of the pool", multiprocess_mode="livesum"
)
DB_POOL_OPEN = Gauge(
    "db_pool_connections_open", "Database connections open (idle or in use)", multiprocess_mode="livesum"
)
DB_POOL_CAPACITY = Gauge("db_pool_connections_capacity", "Pool size plus allowed overflow", multiprocess_mode="livesum")


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR_ENV))


def module_of(route: str, api_prefix: str = "/api/v1") -> str:
    """The module owning a route template: `/api/v1/users/{id}` -> `users`; anything else is `core`."""
    if route.startswith(api_prefix + "/"):
        return route[len(api_prefix) + 1 :].split("/", 1)[0] or "core"
    return "none" if route == UNMATCHED else "core"


class _Series:
    """Totals of one label set; only the event loop's thread writes them."""

    __slots__ = ("buckets", "count", "errors", "labels", "sum")

    def __init__(self, labels: tuple[str, str, str, str]) -> None:
        self.labels = labels
        self.count = 0
        self.sum = 0.0
        self.errors = 0
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf


_SERIES: dict[tuple[str, str, int], _Series] = {}
# Several statuses share a status class (401 and 422 are both 4xx): one series per label set,
# or the exposition would repeat a label set, which Prometheus rejects.
_BY_LABELS: dict[tuple[str, str, str, str], _Series] = {}
_IN_FLIGHT: dict[str, int] = dict.fromkeys((*METHODS, "OTHER"), 0)


class _HttpCollector(Collector):
    """Turns the in-process totals into Prometheus families at scrape time."""

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("http_requests", HELP["requests"], labels=LABELS)
        latency = HistogramMetricFamily("http_request_duration_seconds", HELP["latency"], labels=LABELS)
        errors = CounterMetricFamily("http_request_errors", HELP["errors"], labels=LABELS)
        in_flight = GaugeMetricFamily("http_requests_in_flight", HELP["in_flight"], labels=["method"])
        bounds = [*map(floatToGoString, BUCKETS), "+Inf"]
        for series in list(_BY_LABELS.values()):
            requests.add_metric(series.labels, series.count)
            cumulative, running = [], 0
            for bound, observed in zip(bounds, series.buckets, strict=True):
                running += observed
                cumulative.append((bound, float(running)))
            latency.add_metric(series.labels, cumulative, sum_value=series.sum)
            if series.errors:
                errors.add_metric(series.labels, series.errors)
        for method, value in sorted(_IN_FLIGHT.items()):
            in_flight.add_metric([method], value)
        yield from (requests, latency, errors, in_flight)


class _MultiprocessHttp:
    """The same metrics as `prometheus_client` objects, whose values live in the shared directory."""

    def __init__(self) -> None:
        self.requests = Counter("http_requests_total", HELP["requests"], LABELS, registry=None)
        self.latency = Histogram(
            "http_request_duration_seconds", HELP["latency"], LABELS, buckets=BUCKETS, registry=None
        )
        self.errors = Counter("http_request_errors_total", HELP["errors"], LABELS, registry=None)
        self.in_flight = Gauge(
            "http_requests_in_flight", HELP["in_flight"], ["method"], multiprocess_mode="livesum", registry=None
        )


_MULTIPROCESS: _MultiprocessHttp | None = _MultiprocessHttp() if multiprocess_enabled() else None
if _MULTIPROCESS is None:
    REGISTRY.register(_HttpCollector())


class HttpMetrics:
    """Records one request: `started(method)` when it comes in, `finished(...)` when it is answered."""

    def __init__(self, api_prefix: str = "/api/v1") -> None:
        self.api_prefix = api_prefix
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any | None]] = {}

    def started(self, method: str) -> None:
        if method not in METHODS:
            method = "OTHER"
        if _MULTIPROCESS is not None:
            _MULTIPROCESS.in_flight.labels(method).inc()
        else:
            _IN_FLIGHT[method] += 1

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in METHODS:  # the keys must stay bounded too
            method = "OTHER"
        key = (method, route, status)
        if _MULTIPROCESS is not None:
            self._finished_multiprocess(_MULTIPROCESS, key, seconds)
            return
        _IN_FLIGHT[method] -= 1
        series = _SERIES.get(key)
        if series is None:
            labels = self._labels(method, route, status)
            series = _SERIES[key] = _BY_LABELS.setdefault(labels, _Series(labels))
        series.count += 1
        series.sum += seconds
        series.buckets[bisect_left(BUCKETS, seconds)] += 1
        if status >= 500:
            series.errors += 1

    def _labels(self, method: str, route: str, status: int) -> tuple[str, str, str, str]:
        return method, route, f"{status // 100}xx", module_of(route, self.api_prefix)

    def _finished_multiprocess(self, metrics: _MultiprocessHttp, key: tuple[str, str, int], seconds: float) -> None:
        metrics.in_flight.labels(key[0]).dec()
        children = self._children.get(key)
        if children is None:
            labels = self._labels(*key)
            errors = metrics.errors.labels(*labels) if key[2] >= 500 else None
            children = self._children[key] = (metrics.requests.labels(*labels), metrics.latency.labels(*labels), errors)
        count, latency, errors_child = children
        count.inc()
        latency.observe(seconds)
        if errors_child is not None:
            errors_child.inc()


def instrument_pool(engine: AsyncEngine, config: DatabaseSettings) -> Callable[[], None]:
    """Track the engine's pool through its events (cheap, and correct across workers); returns the undo."""
    pool = engine.sync_engine.pool
    capacity = 0 if engine.dialect.name == "sqlite" else config.pool_size + config.max_overflow
    DB_POOL_CAPACITY.inc(capacity)
    listeners: list[tuple[str, Callable[..., None]]] = [
        ("connect", lambda *_: DB_POOL_OPEN.inc()),
        ("close", lambda *_: DB_POOL_OPEN.dec()),
        ("close_detached", lambda *_: DB_POOL_OPEN.dec()),
        ("checkout", lambda *_: DB_POOL_IN_USE.inc()),
        ("checkin", lambda *_: DB_POOL_IN_USE.dec()),
    ]
    for name, listener in listeners:
        event.listen(pool, name, listener)

    def release() -> None:
        # After `dispose()`: its connections were closed (and counted) through the events.
        DB_POOL_CAPACITY.dec(capacity)
        for name, listener in listeners:
            event.remove(pool, name, listener)

    return release


def render_latest() -> tuple[bytes, str]:
    """The exposition text and its content type: this process, or every worker in multiprocess mode."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead() -> None:
    """On worker exit, drop its live gauges from the shared directory."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
