"""deploy/grafana/dashboard.json queries only metrics this app exposes (a renamed metric breaks a panel silently)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from src.core.cache import CacheNamespace

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboard.json"
# A metric: a name before its label matchers (every panel's query names its job), or label_values' first argument.
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{|label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def queries(node: Any) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variables."""
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        if isinstance(node.get("definition"), str):
            found.append(node["definition"])
        return found + [q for value in node.values() for q in queries(value)]
    if isinstance(node, list):
        return [q for value in node for q in queries(value)]
    return []


def exposed_names(exposition: str) -> set[str]:
    """Sample names the exposition has or declares (a labelled family without samples yet still counts)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


async def test_every_queried_metric_is_exposed(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    await client.get("/health/ready")
    await client.get("/no/such/page")
    cache = CacheNamespace("dashboard")
    await cache.set("k", {"v": 1})
    await cache.get("k")
    await cache.get("absent")

    expressions = queries(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    queried = {name for expr in expressions for match in SELECTOR.findall(expr) for name in match if name}
    assert {"http_requests_total", "http_request_duration_seconds_bucket", "cache_requests_total"} <= queried
    # The job workers' panels: their /metrics serves the same registry (src/worker.py).
    assert {"jobs_queue_depth", "jobs_outbox_lag_seconds", "jobs_failed_total", "jobs_dead_lettered_total"} <= queried
    exposed = exposed_names((await client.get("/metrics")).text)
    assert queried - exposed == set(), f"the dashboard queries metrics /metrics does not expose: {queried - exposed}"
