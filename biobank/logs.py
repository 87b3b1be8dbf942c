"""Logging through the standard ``logging`` module: one line per request (request id,
user, route, status, duration) and one per refused rule, at INFO.

Participants appear in logs only by their pseudonymised study codes (the schema holds no
other identifier); form values and request bodies are never logged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, has_request_context, request
from flask_login import current_user

# A request id given by a proxy is kept when it looks like one; anything else is replaced,
# so that a client cannot write arbitrary text into the log.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(user)s] %(message)s"


class RequestContext(logging.Filter):
    """Adds the request id and the user's name to every record logged during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id", "-")
            user = g.get("_login_user")  # read, never loaded, by the logger
            record.user = getattr(user, "username", None) or "-"
        else:
            record.request_id = "-"
            record.user = "-"
        return True


def init_logging(app: Flask) -> None:
    """Configure the app's logger (``biobank``) once per process, then log each request."""
    logger = logging.getLogger("biobank")
    level = app.config.get("LOG_LEVEL", "INFO")
    logger.setLevel(level)
    if not any(getattr(h, "biobank", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.biobank = True
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RequestContext())
        logger.addHandler(handler)
    app.logger.setLevel(level)

    @app.before_request
    def start():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        g.started = time.perf_counter()

    @app.after_request
    def finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if request.endpoint != "static":
            elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
            current_user._get_current_object()  # the user is named in the record
            app.logger.info(
                "%s %s %s %d %.1fms",
                request.method,
                request.path,
                request.endpoint or "-",
                response.status_code,
                elapsed_ms,
            )
        return response
