"""Language and time zone of each page: the user's choice, then the browser's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import format_date, format_datetime, format_decimal, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from biobank import dates
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
    # Why a primary tube of a visit was not drawn (samples.models.NOT_COLLECTED_REASONS).
    "not_collected": {
        "refused": _l("refused by the participant"),
        "failed_draw": _l("blood draw failed"),
        "broken": _l("tube broken"),
        "forgotten": _l("tube forgotten"),
        "other": _l("other reason (see the note)"),
    },
    # Why a participant left the study (study.models.LEAVING_REASONS).
    "leaving": {
        "progression": _l("disease progression"),
        "toxicity": _l("toxicity"),
        "death": _l("death"),
        "lost_to_follow_up": _l("lost to follow-up"),
        "other": _l("other reason (see the note)"),
    },
    "status": {
        "registered": _l("registered, not yet stored"),
        "in_storage": _l("in storage"),
        "checked_out": _l("checked out"),
        "shipped": _l("shipped"),
        "received": _l("received"),
        "consumed": _l("consumed"),
        "destroyed": _l("destroyed"),
        "lost": _l("lost"),
        "missing": _l("missing"),
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
        "IMPORTED": _l("imported from an inventory"),
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
        "MISSING": _l("missing at receipt"),
        "FOUND": _l("found"),
    },
    # Keys of custody events' details (the `details` filter).
    "detail": {
        "template": _l("label template"),
        "format": _l("format"),
        "count": _l("copies"),
        "job_labels": _l("labels in the job"),
        "reprint": _l("reprint"),
        "reason": _l("reason"),
        "printer": _l("printer"),
        "dpi": _l("resolution (dpi)"),
        "specimen": _l("specimen"),
        "sprec": _l("pre-analytical code"),
        "series": _l("series"),
        "volume_ul": _l("volume"),
        "from_ul": _l("volume before"),
        "to_ul": _l("volume after"),
        "volume_ul_before": _l("volume before"),
        "volume_ul_taken": _l("volume taken"),
        "volume_ul_left": _l("volume left"),
        "used_ul": _l("volume used"),
        "thawed": _l("thawed"),
        "freeze_thaw_count": _l("freeze–thaw cycles"),
        "container": _l("container"),
        "started_at": _l("started"),
        "ended_at": _l("ended"),
        "highest_c": _l("highest temperature"),
        "temperature_c": _l("temperature"),
        "shipment": _l("shipment"),
        "box": _l("box"),
        "position": _l("position"),
        "carrier": _l("carrier"),
        "tracking_number": _l("tracking number"),
        "condition": _l("condition on arrival"),
        "damaged": _l("damaged"),
        "request": _l("request"),
        "last_aliquot": _l("last aliquot of its series"),
        "outcome": _l("outcome"),
        "sha256": _l("file (SHA-256)"),
        "row": _l("row"),
        "legacy_barcode": _l("old label"),
    },
    # What a scanned code that is no tube turned out to be (samples' scan lookup).
    "scanned": {
        "room": _l("room %(code)s"),
        "freezer": _l("freezer %(code)s"),
        "tank": _l("liquid nitrogen tank %(code)s"),
        "shelf": _l("shelf %(code)s"),
        "rack": _l("rack %(code)s"),
        "box": _l("box %(code)s"),
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
    """A custody event's details, readable in the page's language: "label template:
    cryo-38x13 · reprint: yes · volume before: 500 µL"."""
    values = json.loads(text or "{}")
    return " · ".join(
        # A key without a label is still shown, as words.
        f"{str(label(key, 'detail')).replace('_', ' ')}: {_detail_value(key, value)}"
        for key, value in values.items()
        if value is not None
    )


def _detail_value(key: str, value) -> str:
    # The details are canonical JSON: booleans, integer volumes (µL), temperatures (°C),
    # times as UTC ISO strings; the key's suffix says which.
    if isinstance(value, bool):
        return str(_l("yes") if value else _l("no"))
    if isinstance(value, int | float):
        volume = key.endswith("_ul") or "_ul_" in key
        unit = " µL" if volume else " °C" if key.endswith("_c") else ""
        return f"{format_decimal(value)}{unit}"
    if key.endswith("_at") and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return format_datetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    if key == "outcome":
        return str(label(value, "reservation"))
    return str(value)


def _number(value):
    return "" if value is None else format_decimal(value)


# Measured values are written without grouping ("2480,4", not "2 480,4"): they are
# compared digit by digit with reader files and exports, which never group.
def measure(value, digits: int = 4) -> str:
    """A measured value to ``digits`` significant digits in the page's language, trailing
    zeros dropped: 819.94 → "819,9" in French, "819.9" in English; None → "—"."""
    if value is None:
        return "—"
    if value == 0:  # Babel writes zero to significant digits as "0.0" (and -0.0 as "-0.0")
        return "0"
    return format_decimal(value, "@" + "#" * (max(digits, 1) - 1))


def fixed(value, decimals: int = 1) -> str:
    """A number to exactly ``decimals`` decimals in the page's language: R² 0.99991 → "0,9999"."""
    if value is None:
        return "—"
    return format_decimal(value, "0." + "0" * decimals if decimals > 0 else "0")


def percent(value, decimals: int = 1, signed: bool = True) -> str:
    """A percentage with its sign in the page's language: -52.94 → "-52,9 %", 12 → "+12,0 %"."""
    if value is None:
        return "—"
    sign = "+" if signed and round(value, decimals) > 0 else ""
    return f"{sign}{fixed(value, decimals)} %"


def init_babel(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["number"] = _number
    app.jinja_env.filters["measure"] = measure
    app.jinja_env.filters["fixed"] = fixed
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["details"] = _details
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["date_format"] = dates.hint
    app.jinja_env.add_extension("jinja2.ext.i18n")
