"""/api/v1/me, /api/v1/health and /api/v1/health/ready."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from biobank.auth.access import public, requires
from biobank.auth.roles import Permission
from biobank.errors import Busy
from biobank.extensions import db

blp = Blueprint("auth_api", __name__, description="Who is calling; is the service up.")

# Seconds a proxy or an orchestrator is asked to wait before asking again when not ready.
READY_RETRY_AFTER = 10


class MeSchema(Schema):
    username = fields.String()
    role = fields.String()
    site = fields.String(attribute="site_code")


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String()
    revision = fields.String()


@blp.route("/health")
@public
@blp.response(200, HealthSchema)
def health():
    """Liveness probe for the reverse proxy: answers without touching the database."""
    return {"status": "ok"}


@blp.route("/health/ready")
@public
@blp.response(200, ReadySchema)
@blp.alt_response(503, description="database_unavailable or migrations_pending")
def ready():
    """Readiness probe: the database answers and its schema is at the migrations' head
    (``revision``). Otherwise 503 with Retry-After: ``database_unavailable``, or
    ``migrations_pending`` naming the database's revision and the head (run
    ``flask db upgrade``). Reads only; no authentication, no cookie."""
    head, known = _migrations(current_app.extensions["migrate"].directory)
    try:
        db.session.execute(sa.text("SELECT 1"))
        current = _schema_revision()
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as err:
        # Gone, refusing connections, or every pooled connection busy past the pool's wait.
        _forget_session()
        # The class only: a driver's message may hold the database's address or user.
        current_app.logger.warning("not ready: database unavailable (%s)", type(err).__name__)
        raise Busy(
            _l("The database does not answer."),
            code="database_unavailable",
            retry_after=READY_RETRY_AFTER,
        ) from None
    if current != head:
        texts = {"current": _revision_text(current), "head": _revision_text(head)}
        current_app.logger.warning(
            "not ready: database at revision %(current)s, migrations at %(head)s", texts
        )
        if set(current) <= known:
            message = _l(
                "The database's schema is at revision %(current)s, the application's "
                "migrations at %(head)s: run flask db upgrade.",
                **texts,
            )
        else:  # migrated by a later release than the one running
            message = _l(
                "The database's schema is at revision %(current)s, which this version of "
                "the application does not know (its migrations end at %(head)s).",
                **texts,
            )
        raise Busy(message, code="migrations_pending", retry_after=READY_RETRY_AFTER)
    return {"status": "ready", "revision": _revision_text(head)}


@cache
def _migrations(directory: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The head revision(s) of the migrations folder and every revision it holds, read
    once per process: the files do not change under a running application."""
    config = current_app.extensions["migrate"].migrate.get_config(directory)
    script = ScriptDirectory.from_config(config)
    known = frozenset(revision.revision for revision in script.walk_revisions())
    return tuple(sorted(script.get_heads())), known


def _schema_revision() -> tuple[str, ...]:
    """The revision(s) alembic recorded in the database; none when it was never
    migrated."""
    context = MigrationContext.configure(db.session.connection())
    return tuple(sorted(context.get_current_heads()))


def _revision_text(revisions: tuple[str, ...]) -> str:
    return ", ".join(revisions) or "none"


def _forget_session() -> None:
    try:
        db.session.rollback()
    except sa.exc.DBAPIError:  # the connection is gone: nothing to roll back
        db.session.close()


@blp.route("/me")
@requires(Permission.SIGNED_IN)
@blp.response(200, MeSchema)
def me():
    """The account behind the token or session."""
    return current_user
