"""Domain errors and how they reach the user.

Services raise these; they never build responses. The handlers below turn them (and
HTTP errors) into ``{"error": {"code", "message", "fields"}}`` under /api/ and into an
error page elsewhere. Messages are lazy translations, rendered in the user's language.
"""

from __future__ import annotations

from flask import Flask, g, has_request_context, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


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


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(err: DomainError):
        mark_refused(err)
        app.logger.info("refused %s: %s", err.code, err.message)
        return error_response(err.status, err.code, err.message, err.fields)

    @app.errorhandler(CSRFError)
    def handle_csrf(err: CSRFError):
        mark_refused()
        message = _l("The form expired or was sent from elsewhere. Reload the page and try again.")
        return error_response(400, "csrf", message)

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
