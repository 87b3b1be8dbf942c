"""Language and time zone of each page: the user's choice, then the browser's."""

from __future__ import annotations

import json
from datetime import date, datetime

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import format_date, format_datetime, format_decimal, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from biobank.extensions import babel

# Stored values shown to users: written here so the catalogues can translate them.
VALUE_LABELS = {
    "role": {
        "technician": _l("technician"),
        "researcher": _l("researcher"),
        "manager": _l("manager"),
        "admin": _l("administrator"),
    },
    "disease_status": {
        "de_novo": _l("de novo"),
        "relapsed": _l("relapsed"),
        "refractory": _l("refractory"),
    },
    "consent": {"given": _l("given"), "withdrawn": _l("withdrawn")},
    "status": {
        "registered": _l("registered, not yet stored"),
        "in_storage": _l("in storage"),
        "checked_out": _l("checked out"),
        "shipped": _l("shipped"),
        "received": _l("received"),
        "consumed": _l("consumed"),
        "destroyed": _l("destroyed"),
        "lost": _l("lost"),
    },
    "temperature": {"RT": _l("room temperature"), "2-10": _l("2–10 °C")},
    "sprec_element": {
        "sample_type": _l("Type of sample"),
        "container": _l("Primary container"),
        "precentrifugation": _l("Pre-centrifugation delay and temperature"),
        "centrifugation": _l("Centrifugation"),
        "second_centrifugation": _l("Second centrifugation"),
        "postcentrifugation": _l("Post-centrifugation delay and temperature"),
        "storage": _l("Long-term storage"),
    },
    "event": {
        "REGISTERED": _l("registered"),
        "LABEL_PRINTED": _l("label printed"),
        "STATUS_CHANGED": _l("status changed"),
        "VOLUME_CORRECTED": _l("volume corrected"),
        "CORRECTION": _l("correction"),
        "STORED": _l("stored"),
        "MOVED": _l("moved"),
        "CHECKED_OUT": _l("checked out"),
        "RETURNED": _l("returned"),
        "SHIPPED": _l("shipped"),
        "RECEIVED": _l("received"),
        "CONSUMED": _l("consumed"),
        "DESTROYED": _l("destroyed"),
        "LOST": _l("lost"),
        "TEMPERATURE_EXCURSION": _l("temperature excursion"),
        "RESERVED": _l("reserved"),
        "RELEASED": _l("reservation released"),
    },
    "request_status": {
        "submitted": _l("submitted"),
        "under_review": _l("under review"),
        "approved": _l("approved"),
        "rejected": _l("rejected"),
        "being_prepared": _l("being prepared"),
        "shipped": _l("shipped"),
        "received": _l("received"),
        "cancelled": _l("cancelled"),
    },
    "shipment_status": {
        "preparing": _l("being packed"),
        "dispatched": _l("dispatched"),
        "received": _l("received"),
        "cancelled": _l("cancelled"),
    },
    "reservation": {
        "reserved": _l("reserved"),
        "picked": _l("picked"),
        "shipped": _l("shipped"),
        "released": _l("released"),
        "cancelled": _l("cancelled"),
        "consent_withdrawn": _l("released (consent withdrawn)"),
    },
    "run_status": {
        "preview": _l("preview"),
        "accepted": _l("accepted"),
        "rejected": _l("rejected"),
    },
    "response": {
        "complete": _l("complete"),
        "very good partial": _l("very good partial"),
        "partial": _l("partial"),
        "stable": _l("stable"),
        "progression": _l("progression"),
        "not evaluable": _l("not evaluable"),
        "not evaluable by M-spike": _l("not evaluable by M-spike"),
    },
    "run_kind": {"plate": _l("plate"), "sheet": _l("result sheet")},
    "item_outcome": {
        "received": _l("received"),
        "damaged": _l("damaged"),
        "missing": _l("missing"),
    },
}


def label(value, kind: str):
    """The translated label of a stored value, or the value itself if it has none."""
    return VALUE_LABELS.get(kind, {}).get(value, value)


def select_locale() -> str:
    languages = list(current_app.config["LANGUAGES"])
    if not has_request_context():  # command line, tests: the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    return request.accept_languages.best_match(languages) or languages[0]


def select_timezone() -> str:
    # Times are stored in UTC and shown in the time zone of the user's centre.
    if has_request_context() and current_user.is_authenticated and current_user.site_timezone:
        return current_user.site_timezone
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


def _when(value, fmt="medium"):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, fmt)
    if isinstance(value, date):
        return format_date(value, fmt)
    return str(value)


def _details(text: str) -> str:
    """A custody event's details, readable: "template: cryo-38x13 · format: pdf"."""
    values = json.loads(text or "{}")
    return " · ".join(f"{key}: {value}" for key, value in values.items() if value is not None)


def _number(value):
    return "" if value is None else format_decimal(value)


def init_babel(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["number"] = _number
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["details"] = _details
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.add_extension("jinja2.ext.i18n")
