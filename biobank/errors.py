"""Domain errors and how they reach the user.

Services raise these; they never build responses. The handlers below turn them (and
HTTP errors) into ``{"error": {"code", "message", "fields"}}`` under /api/ and into an
error page elsewhere. Messages are lazy translations, rendered in the user's language.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, flash, g, has_request_context, jsonify, redirect, render_template, request
from flask_babel import format_decimal, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from biobank.extensions import db


class DomainError(Exception):
    """A rule of the biobank refused the operation. Nothing has been written."""

    status = 400
    default_code = "invalid"

    def __init__(self, message, *, code: str | None = None, fields: dict | None = None):
        super().__init__(str(message))
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or {}


class Invalid(DomainError):
    status = 400
    default_code = "invalid"


class NotFound(DomainError):
    status = 404
    default_code = "not_found"


class Conflict(DomainError):
    status = 409
    default_code = "conflict"


class Forbidden(DomainError):
    status = 403
    default_code = "forbidden"


class TooManyAttempts(DomainError):
    """Refused for now, not for good: the same may succeed after ``retry_after`` seconds
    (429, with a Retry-After header under /api/)."""

    status = 429
    default_code = "too_many_attempts"

    def __init__(self, message, *, retry_after: int, code: str | None = None, **kwargs):
        super().__init__(message, code=code, **kwargs)
        self.retry_after = max(1, int(retry_after))


class Busy(TooManyAttempts):
    """The server has no room for this now (503, with Retry-After): nobody's fault."""

    status = 503
    default_code = "busy"


def mark_refused(reason: DomainError | None = None) -> None:
    """Record that this request was refused: nothing it did will be committed
    (biobank/transaction.py reads this at the end of the request)."""
    if has_request_context():
        g.refused = reason if reason is not None else True


def refused() -> bool:
    return bool(has_request_context() and g.get("refused"))


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message, fields: dict | None = None):
    if wants_json():
        body = {"error": {"code": code, "message": str(message), "fields": fields or {}}}
        return jsonify(body), status
    page = render_template("errors.html", status=status, code=code, message=message, fields=fields)
    return page, status


def _flatten_webargs(messages: dict) -> dict:
    """webargs nests messages by location ({"json": {"field": [...]}}); users want fields."""
    fields: dict = {}
    for location_messages in messages.values():
        if isinstance(location_messages, dict):
            fields.update(location_messages)
    return fields


# Werkzeug's own descriptions are English only; the common ones, translated.
HTTP_MESSAGES = {
    404: _l("There is nothing at this address. Check the link, or go back to the home page."),
    405: _l("This address does not accept that kind of request."),
    413: _l("The file is too large."),
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
}


UNSTORABLE = _l(
    "A value sent is too large or holds a character the database cannot store. "
    "Check what was typed and try again."
)


def size_text(size: int) -> str:
    """A number of bytes as people read it: "16 MB", "512 KB", "900 bytes" (1 MB = 1024 KB)."""
    for unit, words in ((1024 * 1024, _l("%(number)s MB")), (1024, _l("%(number)s KB"))):
        if size >= unit:
            number = round(size / unit, 1)
            shown = format_decimal(number, "#,##0.#") if has_request_context() else f"{number:g}"
            return str(words) % {"number": shown}
    return gettext("%(number)s bytes", number=size)


def _page_back() -> str:
    """The page a refused form was sent from (the path of its Referer: only a path of this
    site, whatever host a proxy shows), else the home page."""
    referrer = urlsplit(request.referrer or "")
    if referrer.path.startswith("/") and not referrer.path.startswith(("//", "/\\")):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return "/"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(err: DomainError):
        mark_refused(err)
        app.logger.info("refused %s: %s", err.code, err.message)
        body, status = error_response(err.status, err.code, err.message, err.fields)
        if isinstance(err, TooManyAttempts):
            return body, status, {"Retry-After": str(err.retry_after)}
        return body, status

    @app.errorhandler(CSRFError)
    def handle_csrf(err: CSRFError):
        mark_refused()
        message = _l("The form expired or was sent from elsewhere. Reload the page and try again.")
        return error_response(400, "csrf", message)

    @app.errorhandler(RequestEntityTooLarge)
    def handle_too_large(err: RequestEntityTooLarge):
        # Werkzeug refuses a body over MAX_CONTENT_LENGTH before reading it. The same
        # exception also stops a form whose fields alone are too large (a declared length
        # within the limit): that one keeps the plain message.
        mark_refused()
        limit = request.max_content_length
        message = HTTP_MESSAGES[413]
        if limit is not None and (request.content_length or limit + 1) > limit:
            message = _l(
                "The file is larger than the %(limit)s this server accepts: nothing was "
                "saved. Send a smaller file, or split it.",
                limit=size_text(limit),
            )
        app.logger.info("refused upload.too_large: %s", message)
        if wants_json():
            return error_response(413, "upload.too_large", message)
        # A page goes back to the form it was sent from, with the message at its top
        # (Post/Redirect/Get). What was typed cannot be kept: the body was never read.
        flash(str(message), "error")
        return redirect(_page_back(), 303)

    @app.errorhandler(HTTPException)
    def handle_http(err: HTTPException):
        mark_refused()
        data = getattr(err, "data", None) or {}
        if err.code == 422 and "messages" in data:
            # Validation failed in a request schema: a client error, reported per field.
            fields = _flatten_webargs(data["messages"])
            return error_response(400, "validation", _l("Some fields are not valid."), fields)
        code = HTTP_CODES.get(err.code or 500, "error")
        message = HTTP_MESSAGES.get(err.code, err.description)
        return error_response(err.code or 500, code, message)

    @app.errorhandler(sa.exc.DataError)
    @app.errorhandler(OverflowError)
    def handle_unstorable(err: Exception):
        # A value the database cannot hold (a number beyond its integers, a text it cannot
        # store) is the sender's mistake, not a server error. The failed statement may
        # have aborted the transaction (PostgreSQL): it is rolled back at once, so the
        # error page can still be drawn, and the request is refused (nothing committed).
        db.session.rollback()
        mark_refused()
        # The class only: the database's message may quote the values sent.
        app.logger.warning("refused unstorable value: %s", type(err).__name__)
        return error_response(400, "unstorable_value", UNSTORABLE)
