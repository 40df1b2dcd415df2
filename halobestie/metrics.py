"""Prometheus metrics (prometheus-client) and the internal-only `/metrics` view.

Instrumentation in the apps is one line each (`metrics.OFFERS_SENT.inc(n)`); the catalogue is below
and in docs/operations.md ("Observability").

Processes. Web (uvicorn, possibly several worker processes) and the Celery worker (a main process
plus prefork children) are separate process groups. When PROMETHEUS_MULTIPROC_DIR is set (an empty
directory per process group, wiped at its start), prometheus-client's multiprocess mode sums what
every process of the group recorded:

- web: `GET /metrics` on any web process reports the whole group (internal networks only, the
  same INTERNAL_ALLOWED_CIDRS gate as the admin);
- worker: with METRICS_WORKER_PORT set, the worker's main process serves the same exposition on that
  port (same network gate), summing its prefork children.

Without PROMETHEUS_MULTIPROC_DIR each process reports only itself (fine for a single process).
Live gauges (open sockets) use `livesum`: processes that exited drop out.
Liveness gauges (age of the last sweep sent by beat / completed by the worker) are read from Valkey at
scrape time, so any web instance reports them.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from halobestie.liveness import liveness_report

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_HUMAN_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0)
_LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)

OFFERS_SENT = Counter("halobestie_offers_sent", "Chat request offers sent to mitras (one per mitra offered).")
OFFERS_ACCEPTED = Counter("halobestie_offers_accepted", "Offers accepted (the winning accept).")
OFFERS_TAKEN = Counter("halobestie_offers_taken", "Accepts that lost the race (REQUEST_TAKEN).")
OFFERS_TIMED_OUT = Counter(
    "halobestie_offers_timed_out", "Pairing deadlines that ended a request without a mitra."
)
WEBHOOK_TO_OFFER = Histogram(
    "halobestie_webhook_to_offer_seconds",
    "Payment confirmation to the offer being sent (pairing start).",
    buckets=_LATENCY_BUCKETS,
)
TIME_TO_ACCEPT = Histogram(
    "halobestie_time_to_accept_seconds", "Offer sent to a mitra's winning accept.", buckets=_HUMAN_BUCKETS
)
# Matching (issue 14, docs/matching.md). Per hour = a PromQL range; per mitra = the selector
# sessions_app.selectors.matching_metrics (a mitra label would be one series per mitra here).
_QUEUE_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1800.0, 3600.0)
TIME_TO_FIRST_OFFER = Histogram(
    "halobestie_time_to_first_offer_seconds",
    "Payment confirmed to the first offer sent for it (queued requests included).",
    buckets=_QUEUE_BUCKETS,
)
OFFERS_DECLINED = Counter("halobestie_offers_declined", "Offers declined by the mitra.")
OFFERS_MISSED = Counter(
    "halobestie_offers_missed", "Offers that reached the offer window unanswered (the mitra missed them)."
)
MITRAS_PAUSED = Counter(
    "halobestie_mitras_paused", "Mitras set offline after missing offers in a row (reason missed_offers)."
)
QUEUE_JOINED = Counter("halobestie_queue_joined", "Paid requests that joined the pairing queue.")
QUEUE_WAIT = Histogram(
    "halobestie_queue_wait_seconds",
    "Joining the queue to leaving it, by outcome (matched, cancelled, timeout).",
    ["outcome"],
    buckets=_QUEUE_BUCKETS,
)
HEARTBEATS = Counter("halobestie_heartbeats", "Mitra heartbeats received (rate() gives heartbeats/s).")
OPEN_SOCKETS = Gauge(
    "halobestie_open_sockets", "WebSocket connections open on this instance.", multiprocess_mode="livesum"
)
DEADLINE_LATENESS = Histogram(
    "halobestie_deadline_lateness_seconds",
    "Clock and pairing deadlines: fired_at - due_at, by kind.",
    ["kind"],
    buckets=_LATENESS_BUCKETS,
)
VALKEY_FALLBACKS = Counter(
    "halobestie_valkey_fallbacks", "Availability reads served by the ORM because Valkey failed.", ["reader"]
)
SWEEP_DURATION = Histogram(
    "halobestie_sweep_duration_seconds",
    "Duration of each periodic sweep run.",
    ["sweep"],
    buckets=_LATENCY_BUCKETS,
)


def observe_since(histogram: Any, start: dt.datetime | None, now: dt.datetime | None = None) -> None:
    """Observe now - start in seconds (nothing when start is unknown; never negative)."""
    if start is None:
        return
    end = now or dt.datetime.now(dt.UTC)
    histogram.observe(max(0.0, (end - start).total_seconds()))


def socket_opened(consumer: Any) -> None:
    OPEN_SOCKETS.inc()
    consumer._metrics_counted = True


def socket_closed(consumer: Any) -> None:
    if getattr(consumer, "_metrics_counted", False):
        consumer._metrics_counted = False
        OPEN_SOCKETS.dec()


class LivenessCollector:
    """Age of the last sweep sent (beat) / completed (worker), read from Valkey at scrape time."""

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "halobestie_last_sweep_age_seconds",
            "Seconds since beat last sent / the worker last completed a periodic sweep (NaN: unknown).",
            labels=["component"],
        )
        up = GaugeMetricFamily(
            "halobestie_component_live",
            "1 if the component's last sweep is recent, else 0.",
            labels=["component"],
        )
        for component, state in liveness_report().items():
            age = state["last_sweep_age_seconds"]
            gauge.add_metric([component], float("nan") if age is None else float(age))
            up.add_metric([component], 1.0 if state["status"] == "ok" else 0.0)
        yield gauge
        yield up


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def build_registry(*, liveness: bool = True) -> CollectorRegistry:
    """The registry to expose: the whole process group's metrics, plus liveness if asked."""
    # reason: the process-wide registry is read at scrape time, after every module registered its metrics
    from prometheus_client import REGISTRY

    if multiprocess_dir():
        # reason: multiprocess mode is loaded only when PROMETHEUS_MULTIPROC_DIR is set
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in list(REGISTRY._collector_to_names):
            registry.register(collector)
    if liveness:
        registry.register(LivenessCollector())
    return registry


def exposition(*, liveness: bool = True) -> bytes:
    return generate_latest(build_registry(liveness=liveness))


def _internal_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    # reason: app modules import this one at load time; settings are read per call
    from django.conf import settings

    return [ipaddress.ip_network(c, strict=False) for c in settings.INTERNAL_ALLOWED_CIDRS]


def is_internal(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in _internal_networks())


def metrics_view(request: Any) -> Any:
    """GET /metrics (text exposition). Outside INTERNAL_ALLOWED_CIDRS it does not exist (404)."""
    # reason: keeps this module importable by the worker before Django is set up
    from django.http import HttpResponse

    if not is_internal(request.META.get("REMOTE_ADDR", "")):
        return HttpResponse("Not found", status=404, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


# --- the worker's own endpoint -----------------------------------------------------------------
def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "/") not in ("/", "/metrics") or not is_internal(
        environ.get("REMOTE_ADDR", "")
    ):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found"]
    body = exposition(liveness=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
    return [body]


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104 (network-gated)
    """Serve the worker group's metrics on a daemon thread; returns the server."""
    # reason: the stdlib server is needed only in a worker that serves its own metrics
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    server = make_server(addr, port, _wsgi_app, server_class=WSGIServer, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("worker metrics on %s:%d/metrics", addr, port)
    return server


def _mark_self_dead_at_exit() -> None:
    mark_process_dead(os.getpid())


if multiprocess_dir():
    # A process that exits cleanly drops out of the live gauges (a killed one stays until the group's
    # directory is wiped at its next start).
    atexit.register(_mark_self_dead_at_exit)


def mark_process_dead(pid: int) -> None:
    """Multiprocess mode: drop a dead process's live gauges (called when a pool child exits)."""
    if multiprocess_dir():
        # reason: multiprocess mode is loaded only when PROMETHEUS_MULTIPROC_DIR is set
        from prometheus_client import multiprocess

        with contextlib.suppress(Exception):
            multiprocess.mark_process_dead(pid)
