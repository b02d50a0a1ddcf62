"""Prometheus metrics of one process: rpcs by method and code (both transports), REST
requests by route and status, the database pool, background tasks, readiness. Served at
`/metrics` on the REST port. One registry per process (built by `app.py`), so several
servers in one test process do not collide."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.kit import db

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._rpcs = Counter(
            "invoicing_rpc_requests",
            "Rpcs served, by method, status code and transport.",
            ["method", "code", "transport"],
            registry=self.registry,
        )
        self._rpc_seconds = Histogram(
            "invoicing_rpc_duration_seconds",
            "Time to serve an rpc (decoding to encoding), by method and transport.",
            ["method", "transport"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._http = Counter(
            "invoicing_http_requests",
            "REST requests, by method, route template and HTTP status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._http_seconds = Histogram(
            "invoicing_http_request_duration_seconds",
            "Time to answer a REST request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._tasks = Counter(
            "invoicing_task_runs",
            "Background task runs, by task and outcome (ok, failed, lost_lease).",
            ["task", "outcome"],
            registry=self.registry,
        )
        self._task_items = Counter(
            "invoicing_task_items",
            "Items a background task handled (keys purged, documents ingested...).",
            ["task"],
            registry=self.registry,
        )
        self._task_seconds = Histogram(
            "invoicing_task_duration_seconds",
            "Time of one background task run, by task.",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, ...], Any] = {}

    def rpc(self, method: str, code: str, transport: str, seconds: float) -> None:
        key = ("rpc", method, code, transport)
        counter = self._children.get(key)
        if counter is None:
            counter = self._children[key] = self._rpcs.labels(method, code, transport)
            self._children[("rpc_s", method, transport)] = self._rpc_seconds.labels(
                method, transport
            )
        counter.inc()
        self._children[("rpc_s", method, transport)].observe(seconds)

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        self._http.labels(method, route, str(status)).inc()
        self._http_seconds.labels(method, route).observe(seconds)

    def task(self, task: str, outcome: str, items: int, seconds: float) -> None:
        self._tasks.labels(task, outcome).inc()
        self._task_items.labels(task).inc(items)
        self._task_seconds.labels(task).observe(seconds)

    def watch(self, database: db.Database, ready: Callable[[], bool]) -> None:
        self.registry.register(_Gauges(database, ready))

    def route(self) -> Route:
        async def serve(request: Request) -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)

        return Route("/metrics", serve, methods=["GET"])


class _Gauges(Collector):
    """Read at scrape time: the pool's size and idle connections, readiness."""

    def __init__(self, database: db.Database, ready: Callable[[], bool]) -> None:
        self._database = database
        self._ready = ready

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._database.pool
        yield GaugeMetricFamily(
            "invoicing_db_pool_connections", "Connections the pool holds.", pool.get_size()
        )
        yield GaugeMetricFamily(
            "invoicing_db_pool_idle_connections", "Pool connections idle.", pool.get_idle_size()
        )
        yield GaugeMetricFamily(
            "invoicing_db_pool_max_connections", "The pool's size limit.", pool.get_max_size()
        )
        yield GaugeMetricFamily(
            "invoicing_ready", "1 while the database answers (health SERVING).", int(self._ready())
        )
