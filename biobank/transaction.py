"""The transaction rule: one request (or command) is one unit of work.

It commits once, at its end, and only when no refusal happened. A refusal is a domain
error raised by a service (whether a view turned it into a message or an error handler
into an error page), an HTTP error, or a response whose status says the request failed.
It is never decided by the status code alone: a refused form that redirects (303) must
roll back too, and after a failed flush (a position lost to a race) a commit would raise
instead of showing the message.

Services only flush; this module is the one place that commits.

A database that goes away (a restart, a failover, a session ended by the server) never
makes a 500: the pool tests a connection before lending it (``pool_pre_ping``, set in
create_app), a read (GET, HEAD, OPTIONS) that loses its connection half-way is run once
more from its start on a fresh one (``RetryLostConnection``), and a write that cannot
complete is answered 503 with Retry-After, having written nothing.
"""

from __future__ import annotations

from functools import wraps

import click
import sqlalchemy as sa
from flask import Flask, current_app, g, has_app_context, make_response, request
from flask_babel import lazy_gettext as _l

from biobank.errors import DomainError, error_response, mark_refused, refused
from biobank.extensions import db, login_manager

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_SAVED = _l(
    "The database did not record this change, so nothing was saved. Try again in a moment."
)

# Keys of the WSGI environ: the first attempt of a read lost its database connection (the
# value: its request id), and the second attempt, which is never run again.
LOST_CONNECTION = "biobank.database_connection_lost"
RETRIED = "biobank.database_retried"

# PostgreSQL's codes for a session the server ended: an administrator's command
# (pg_terminate_backend, a fast shutdown), a crash of another backend, a server starting up.
_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03"})
_CONNECTION_GONE = (
    "server closed the connection",
    "the connection is closed",
    "terminating connection",
)


def connection_lost(err: BaseException) -> bool:
    """Whether a database error says the connection itself is gone, not that a statement
    was refused: the same work on a fresh connection may succeed. SQLAlchemy marks such an
    error ``connection_invalidated`` when it sees it on a connection it lent; an error
    raised elsewhere is recognised by PostgreSQL's code or the driver's words."""
    if not isinstance(err, sa.exc.DBAPIError):
        return False
    if err.connection_invalidated:
        return True
    if not isinstance(err, sa.exc.OperationalError):
        return False
    if getattr(err.orig, "sqlstate", None) in _SESSION_ENDED:
        return True
    said = str(err.orig).lower()
    return any(words in said for words in _CONNECTION_GONE)


def _described(err: sa.exc.DBAPIError) -> str:
    """The driver's error class and PostgreSQL's code, for the log: never its message,
    which may quote the values sent or the database's address."""
    state = getattr(err.orig, "sqlstate", None)
    name = type(err.orig).__name__ if err.orig is not None else type(err).__name__
    return f"{name} {state}" if state else name


def retry_after_seconds() -> int:
    return max(1, int(current_app.config.get("DATABASE_RETRY_AFTER_SECONDS", 5)))


def _discard_work() -> None:
    """Roll the request's session back; a connection too broken even for a rollback is
    dropped from the pool instead (the next checkout opens a new one)."""
    try:
        db.session.rollback()
    except sa.exc.DBAPIError:
        db.session().invalidate()


def database_unavailable_response():
    """503 ``database_unavailable`` with Retry-After: nothing was saved, try again soon.

    A page is the usual error page. When the signed-in account could not be read (the
    database was away from the request's start), it is drawn for nobody: neither the
    page's menu nor the request's log line try the database again."""
    if "_login_user" not in g:
        g._login_user = login_manager.anonymous_user()
    body, status = error_response(503, "database_unavailable", NOT_SAVED)
    return make_response(body, status, {"Retry-After": str(retry_after_seconds())})


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
            _discard_work()
            return response
        try:
            db.session.commit()
        except sa.exc.DBAPIError as err:
            # The database went away or refused the commit (a dropped connection, a
            # serialisation failure): nothing was recorded, and the user is told so.
            _discard_work()
            if isinstance(err, sa.exc.OperationalError) or connection_lost(err):
                current_app.logger.warning(
                    "commit failed, nothing saved: database unavailable (%s)", _described(err)
                )
            else:  # a constraint checked at commit: a bug to look at
                current_app.logger.warning("commit failed", exc_info=True)
            return database_unavailable_response()
        return response

    @app.errorhandler(sa.exc.DBAPIError)
    def database_unavailable(err):
        # The database went away in the middle of the request, or SQLite's write lock
        # stayed taken past the busy timeout: nothing of the request was recorded.
        if not isinstance(err, sa.exc.OperationalError) and not connection_lost(err):
            raise err  # a statement the database refused (a constraint): a bug, a 500
        _discard_work()
        mark_refused()
        if connection_lost(err) and may_run_again(request.environ):
            # RetryLostConnection runs the request again; this answer is never sent.
            request.environ[LOST_CONNECTION] = g.get("request_id") or "-"
            current_app.logger.warning(
                "database connection lost (%s): %s %s is run once more",
                _described(err),
                request.method,
                request.path,
            )
        else:
            current_app.logger.warning(
                "database unavailable (%s): %s %s answered 503, nothing saved",
                _described(err),
                request.method,
                request.path,
            )
        return database_unavailable_response()

    @app.teardown_request
    def discard(_error):
        # What is left of the request's transaction (a read's, or one an exception that
        # escaped every handler kept from after_request) ends here: a connection lost
        # after the answer was ready is dropped, not reported as the request's failure
        # when the application context closes the session.
        _discard_work()

    app.wsgi_app = RetryLostConnection(app, app.wsgi_app)


class RetryLostConnection:
    """WSGI middleware: a read (GET, HEAD, OPTIONS) whose database connection was lost
    on the way is run once more, from its start, in a new application context (a new
    session, a fresh connection from the pool): the client gets the second answer. A
    write is never run again (its first attempt wrote nothing: it is answered 503), nor
    a read with a body (the body has been read), nor a second attempt.

    The first attempt's answer is held back: Flask gives the status and headers before
    it returns its body, which is closed unsent when the request is run again."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if not may_run_again(environ):
            return self.wsgi_app(environ, start_response)
        fresh = dict(environ)  # before Flask and the middleware inside add their keys
        held: list = []
        written: list[bytes] = []

        def hold(status, headers, exc_info=None):
            held[:] = [(status, headers, exc_info)]
            return written.append

        body = self.wsgi_app(environ, hold)
        lost = environ.get(LOST_CONNECTION)
        if not lost:
            write = start_response(*held[0])
            for chunk in written:
                write(chunk)
            return body
        if hasattr(body, "close"):
            body.close()
        if has_app_context():  # an application context around the request (tests)
            db.session.remove()
        again = dict(fresh)
        again[RETRIED] = True
        if lost != "-":  # both attempts under one request id in the log
            again["HTTP_X_REQUEST_ID"] = lost
        with self.app.app_context():
            return self.wsgi_app(again, start_response)


def may_run_again(environ) -> bool:
    """Whether a request may be run once more when it lost its database connection: a
    read (GET, HEAD, OPTIONS) without a body, on its first attempt."""
    has_body = environ.get("CONTENT_LENGTH") not in (None, "", "0") or bool(
        environ.get("HTTP_TRANSFER_ENCODING")
    )
    return (
        environ.get("REQUEST_METHOD") in SAFE_METHODS and not has_body and not environ.get(RETRIED)
    )


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
