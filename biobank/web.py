"""Small helpers shared by the HTML views of every domain."""

from __future__ import annotations

from flask import flash

from biobank.errors import DomainError


def show_error(form, err: DomainError, field_names: dict[str, str] | None = None) -> None:
    """Put a refused rule's message at the top of the page and on the fields it names.

    ``field_names`` maps the service's field keys to form field names where they differ.
    """
    flash(str(err.message), "error")
    for key in err.fields:
        name = (field_names or {}).get(key, key)
        field = _find_field(form, name)
        if field is not None:
            field.errors = [*field.errors, str(err.message)]


def _find_field(form, dotted: str):
    node = form
    for part in dotted.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError, IndexError):
            return None
    return node
