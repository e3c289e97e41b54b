"""Prometheus metrics: HTTP requests, the database pool, and (from the cache) hits and misses.

Labels stay bounded: the route *template* (`/api/v1/users/{user_id}`, never the
raw path), the status *class* (`2xx`), a fixed set of methods, and the module
that owns the route. Label children are cached per (method, route, status) so
recording a request costs a dict lookup and three updates, not `.labels()`
calls. With `PROMETHEUS_MULTIPROC_DIR` set (several workers), values live in
files there and `/metrics` aggregates every worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from src.core.config import DatabaseSettings

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LABELS = ("method", "route", "status", "module")
UNMATCHED = "<unmatched>"
# Seconds; a trivial endpoint answers in well under a millisecond.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("http_requests_total", "HTTP requests answered", LABELS)
LATENCY = Histogram("http_request_duration_seconds", "Time to answer an HTTP request", LABELS, buckets=BUCKETS)
ERRORS = Counter("http_request_errors_total", "HTTP requests answered 5xx or failed unhandled", LABELS)
# The route is only known once routing ran, so in-flight requests are counted per method.
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being served", ["method"], multiprocess_mode="livesum")
DB_POOL_IN_USE = Gauge(
    "db_pool_connections_in_use", "Database connections checked out of the pool", multiprocess_mode="livesum"
)
DB_POOL_OPEN = Gauge(
    "db_pool_connections_open", "Database connections open (idle or in use)", multiprocess_mode="livesum"
)
DB_POOL_CAPACITY = Gauge("db_pool_connections_capacity", "Pool size plus allowed overflow", multiprocess_mode="livesum")


def module_of(route: str, api_prefix: str = "/api/v1") -> str:
    """The module owning a route template: `/api/v1/users/{id}` -> `users`; anything else is `core`."""
    if route.startswith(api_prefix + "/"):
        return route[len(api_prefix) + 1 :].split("/", 1)[0] or "core"
    return "none" if route == UNMATCHED else "core"


class HttpMetrics:
    """Records one request; per (method, route, status) the label children are resolved once."""

    def __init__(self, api_prefix: str = "/api/v1") -> None:
        self.api_prefix = api_prefix
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any | None]] = {}
        self._in_flight = {method: IN_FLIGHT.labels(method) for method in (*METHODS, "OTHER")}

    def started(self, method: str) -> Any:
        """Count the request as in flight; returns the gauge child to pass to `finished`."""
        gauge = self._in_flight.get(method) or self._in_flight["OTHER"]
        gauge.inc()
        return gauge

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in METHODS:  # the cache key must stay bounded too
            method = "OTHER"
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._resolve(method, route, status)
        count, latency, errors = children
        count.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def _resolve(self, method: str, route: str, status: int) -> tuple[Any, Any, Any | None]:
        labels = (
            method,
            route,
            f"{status // 100}xx",
            module_of(route, self.api_prefix),
        )
        errors = ERRORS.labels(*labels) if status >= 500 else None
        return REQUESTS.labels(*labels), LATENCY.labels(*labels), errors


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


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR_ENV))


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
