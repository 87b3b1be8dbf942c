"""Every request counted and timed, by route and status.

The route is the URL rule (``/api/v1/aliquots/<barcode>``), never the address asked for:
the address names tubes and participants, and would make a series of every one of them.
An address that matches no route is counted as ``<unmatched>``; a method the application
does not know as ``other``.

Without ``PROMETHEUS_MULTIPROC_DIR`` the counts live in this process's memory (the
development server, the tests). With it (gunicorn: see gunicorn.conf.py) each worker
writes its counts to files in that folder, which a scrape adds up; the variable must be
set before the process starts, as prometheus-client reads it when it is first imported.
"""

from __future__ import annotations

import os
import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram

# Read once, as prometheus-client does when it is imported.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

# From 5 ms (a scan lookup) to 10 s (an export, a large import).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"

# This process's own counts, read by a scrape when there is no multiprocess folder.
REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "biobank_http_requests",
    "Requests answered, by method, route (the URL rule) and status.",
    ("method", "route", "status"),
    registry=REGISTRY,
)
DURATION = Histogram(
    "biobank_http_request_duration_seconds",
    "Time from the start of a request to its answer, by method and route.",
    ("method", "route"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


def route_of_request() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def install(app: Flask) -> None:
    """Time and count each request. Registered before the other request hooks, so that
    its start is taken first and its count made last, whatever answer they left."""

    @app.before_request
    def start_clock():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def count(response):
        method = request.method if request.method in METHODS else "other"
        route = route_of_request()
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            DURATION.labels(method, route).observe(time.perf_counter() - started)
        return response
