"""What a request may carry, checked once before any view runs.

A NUL byte cannot be stored in a PostgreSQL text column, and a number beyond the
database's integers cannot be compared with an id: left to the database, both end as a
server error (500) deep inside a query. So:

* a NUL byte in a query or form value or a JSON string, a lone surrogate in a JSON string
  (no UTF-8 text can hold one), and any control character in the path, in a field's name
  or in an uploaded file's name (where a line break could also reach a header or a log)
  are refused with 400, naming the field (a scanner's trailing Enter or Tab at the end of
  the path excepted);
* every ``<int:…>`` path parameter stops at the database's largest integer key: an id
  beyond it names nothing, so the address is not found (404).

Other control characters in values (a tab or a line break in a comment, a group separator
sent by a barcode scanner) are left to the rule that reads the field.
"""

from __future__ import annotations

import re
from typing import NoReturn

from flask import Flask, request
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, ValidationError

from biobank.errors import Invalid

# The largest key an INTEGER column holds, on PostgreSQL as on SQLite's 32-bit ids.
MAX_DATABASE_INTEGER = 2**31 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_STORABLE = re.compile(r"[\x00\ud800-\udfff]")


class DatabaseInteger(IntegerConverter):
    """``<int:…>``, bounded by the database's integers unless the rule gives a smaller
    ``max``: a larger number (or thousands of digits) names nothing, 404.

    Out of range is answered NotFound from here rather than by werkzeug's "no match":
    where a page and a form share an address (GET /requests/1/approve shows the form,
    POST sends it), werkzeug would call a failed conversion on one "405 method not
    allowed" because the other method's rule was seen first."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(
            map, fixed_digits, min, MAX_DATABASE_INTEGER if max is None else max, signed
        )

    def to_python(self, value: str) -> int:
        # Compared as text first: int() of a very long number is slow, and refused by
        # Python beyond 4300 digits.
        if len(value.lstrip("0")) > len(str(self.max)):
            raise NotFound()
        try:
            return super().to_python(value)
        except ValidationError:
            raise NotFound() from None


def install(app: Flask) -> None:
    """Bound ``<int:…>`` path parameters and refuse odd input: before the blueprints are
    registered (their rules take the converter then) and before any other check reads
    the request."""
    app.url_map.converters["int"] = DatabaseInteger
    app.before_request(refuse_odd_input)


def _shown(name: str) -> str:
    """A field's name as it can be shown: control characters written as \\xNN."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]", lambda m: f"\\x{ord(m[0]):02x}", name)


def _refuse(field: str, message: str) -> NoReturn:
    raise Invalid(
        message,
        code="request.control_character",
        fields={_shown(field): _("control character")},
    )


def refuse_odd_input() -> None:
    # A scanner's own Enter or Tab at the end of a code in the address (a script that
    # pastes the scan into /aliquots/<barcode>) is a suffix the lookup strips, not input.
    if _CONTROL.search(request.path.rstrip("\r\n\t")):
        _refuse("path", _("The address contains a control character, which cannot be accepted."))
    for source in (request.args, request.form):
        for name, value in source.items(multi=True):
            if _CONTROL.search(name) or _NOT_STORABLE.search(value):
                _refuse(name, _field_message(name))
    for name, upload in request.files.items(multi=True):
        if _CONTROL.search(name):
            _refuse(name, _field_message(name))
        if upload.filename and (
            _CONTROL.search(upload.filename) or _NOT_STORABLE.search(upload.filename)
        ):
            _refuse(
                name,
                _(
                    "The name of the file sent as “%(field)s” contains a control character "
                    "or a line break: rename the file and send it again.",
                    field=_shown(name),
                ),
            )
    if request.is_json:
        body = request.get_json(silent=True)
        if body is not None:
            _check_json(body)


def _field_message(name: str) -> str:
    return _(
        "“%(field)s” contains a control character (such as NUL), which cannot be accepted.",
        field=_shown(name),
    )


def _check_json(body) -> None:
    """Every key and string of a JSON body, however deep, without recursion."""
    pending = [("", body)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            if _NOT_STORABLE.search(value):
                _refuse(where or "body", _field_message(where or "body"))
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                if _CONTROL.search(key) or _NOT_STORABLE.search(key):
                    _refuse(name, _field_message(name))
                pending.append((name, item))
        elif isinstance(value, list):
            pending.extend(
                (f"{where}.{index}" if where else str(index), item)
                for index, item in enumerate(value)
            )
