"""Small helpers shared by the HTML views of every domain."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, request
from markupsafe import Markup

from biobank.errors import DomainError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def writes(view):
    """Mark a GET route that writes (printing a label records a custody event), so that
    its request runs as a writing transaction and is committed."""
    view.writes = True
    return view


def request_writes() -> bool:
    """Whether the current request may write: any unsafe method, or a route marked so."""
    if request.method not in SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "writes", False))


def local_path(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``: a full URL taken from a
    form would let a link send the user to another site after logging in or printing."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not urlsplit(target).netloc
    ):
        return target
    return default


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


def file_response(content: bytes, mimetype: str, filename: str, *, inline: bool = False):
    """A file for the browser: shown (a PDF to print, a picture) or downloaded."""
    response = current_app.response_class(content, mimetype=mimetype)
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


# Sections a higher domain adds to a lower domain's page (the assay results on the aliquot
# page, which samples/ cannot import): page name → functions returning HTML.
_PANELS: dict[str, list] = {}


def add_panel(page: str, render) -> None:
    """Register ``render(**context) -> str`` (rendered HTML) for ``panels(page, ...)``."""
    if render not in _PANELS.setdefault(page, []):
        _PANELS[page].append(render)


def panels(page: str, **context) -> Markup:
    """The registered sections of ``page``, for its template: ``{{ panels("aliquot", ...) }}``."""
    return Markup("".join(render(**context) for render in _PANELS.get(page, ())))
