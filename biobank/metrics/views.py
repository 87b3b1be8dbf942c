"""GET /metrics: the Prometheus text format, to allowed addresses or the token only.

Anyone else gets exactly what an unknown address gets (404), so that the route does not
tell it exists. An allowed scrape is nobody's visit: no session or account is read (so
no cookie is set and no sign-in rule runs) and nothing is written.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from biobank.extensions import db
from biobank.metrics import collectors, requests

bp = Blueprint("metrics", __name__)


@bp.route("/metrics")
def metrics():
    access = current_app.extensions["biobank.metrics"]
    if not access.allows(request.remote_addr, request.headers.get("Authorization")):
        abort(404)
    # Flask-Login takes this as the request's user: the session cookie and the bearer
    # token (the metrics token is no account's) are never looked up.
    g._login_user = current_app.login_manager.anonymous_user()
    registry = collectors.scrape_registry(
        db.engine,
        current_app.instance_path,
        requests=requests.REGISTRY,
        multiprocess_dir=requests.MULTIPROCESS_DIR,
    )
    response = Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response
