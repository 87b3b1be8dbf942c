"""Prometheus metrics at ``/metrics``, for the machines that watch the biobank.

- ``requests.py`` counts every answer by route (the URL rule, never the address itself,
  which would name tubes and participants) and status, and times it. Under gunicorn the
  workers write their counts to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's
  multiprocess mode) and a scrape, answered by any one worker, adds them all up.
- ``collectors.py`` reads, at each scrape, what the database and the instance folder say
  now: the outbox, the aliquots by status, recent temperature excursions, the last
  custody verification, the connections the answering worker holds.
- ``access.py`` decides who may read them (``METRICS_ALLOWED_ADDRESSES``,
  ``METRICS_TOKEN``); ``views.py`` answers.

A scrape is no user's request: it reads no session and no account, sets no cookie and
writes nothing.
"""

from __future__ import annotations

from flask import Flask

from biobank.metrics import access, requests


def init_app(app: Flask) -> None:
    """Check the access settings (a mistake stops the start) and count every request."""
    app.extensions["biobank.metrics"] = access.Access.from_config(app.config)
    requests.install(app)
