"""The transaction rule: one request (or command) is one unit of work.

It commits once, at its end, and only when no refusal happened. A refusal is a domain
error raised by a service (whether a view turned it into a message or an error handler
into an error page), an HTTP error, or a response whose status says the request failed.
It is never decided by the status code alone: a refused form that redirects (303) must
roll back too, and after a failed flush (a position lost to a race) a commit would raise
instead of showing the message.

Services only flush; this module is the one place that commits.
"""

from __future__ import annotations

from functools import wraps

import click
import sqlalchemy as sa
from flask import Flask, current_app, make_response, request
from flask_babel import lazy_gettext as _l

from biobank.errors import DomainError, error_response, mark_refused, refused
from biobank.extensions import db

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_SAVED = _l(
    "The database did not record this change, so nothing was saved. Try again in a moment."
)


def request_writes() -> bool:
    """Whether the current request may write: any method but GET, HEAD and OPTIONS, unless
    its view is marked ``writes_nothing``.

    A GET never writes (a reload, a prefetch or a crawler must change nothing), so reads
    run in a read-only transaction on SQLite and are never committed."""
    if request.method in SAFE_METHODS:
        return False
    view = current_app.view_functions.get(request.endpoint)
    return not getattr(view, "writes_nothing", False)


def writes_nothing(view):
    """Mark a view whose POST only reads the database (signing in checks a password and
    sets the cookie): on SQLite it then runs without the write lock, so that slow work
    such as hashing a password does not hold back every other writer. Its changes, if any
    were made, would never be committed."""
    view.writes_nothing = True
    return view


def install(app: Flask) -> None:
    """Commit or roll back each request by the rule above."""

    @app.after_request
    def finish(response):
        if not request_writes():
            return response
        if refused() or response.status_code >= 400:
            db.session.rollback()
            return response
        try:
            db.session.commit()
        except sa.exc.DBAPIError:
            # The database went away or refused the commit (a dropped connection, a
            # serialisation failure): nothing was recorded, and the user is told so.
            db.session.rollback()
            current_app.logger.warning("commit failed", exc_info=True)
            return make_response(error_response(503, "database_unavailable", NOT_SAVED))
        return response

    @app.errorhandler(sa.exc.OperationalError)
    def database_unavailable(_err):
        # The database went away in the middle of the request, or SQLite's write lock
        # stayed taken past the busy timeout: nothing of the request was recorded.
        db.session.rollback()
        mark_refused()
        current_app.logger.warning("database unavailable", exc_info=True)
        return make_response(error_response(503, "database_unavailable", NOT_SAVED))

    @app.teardown_request
    def discard(error):
        # An exception that escaped every handler (a 500) never reaches after_request.
        if error is not None:
            db.session.rollback()


def unit_of_work(command):
    """A command line: commit once when it succeeds; on a refused rule, write nothing and
    exit 1 with the message."""

    @wraps(command)
    def run(*args, **kwargs):
        try:
            result = command(*args, **kwargs)
        except DomainError as err:
            db.session.rollback()
            current_app.logger.info("refused %s: %s", err.code, err.message)
            raise click.ClickException(str(err.message)) from err
        except Exception:
            db.session.rollback()
            raise
        db.session.commit()
        return result

    return run
