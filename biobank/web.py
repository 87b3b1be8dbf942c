"""Small helpers shared by the HTML views of every domain."""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from flask import Response, current_app, flash, g, redirect, request, session
from flask_babel import ngettext
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from biobank.errors import DomainError, mark_refused

KEPT_FORM = "kept_form"
KEPT_FOR_SECONDS = 15 * 60
# Never kept in the session cookie: passwords, tokens, the CSRF token.
SECRET = re.compile(r"password|token|secret", re.IGNORECASE)
MAX_COOKIE_BYTES = 3800


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


def refuse(
    err: DomainError,
    to: str,
    *,
    field_names: dict[str, str] | None = None,
    flash_it: bool = True,
) -> Response:
    """The one way a page turns a refused rule into a message.

    The request is marked refused (nothing it did is committed, even after a failed
    flush), the message is flashed, what the user typed is kept with the message on the
    fields the error names, and the browser is sent (303) to ``to``, whose GET shows them:
    Post/Redirect/Get on refusal as on success, so reload and back are always safe.
    ``field_names`` maps the service's field keys to form field names where they differ.
    A scan page, which shows the refusal in its own result block (``kept_form().refusal``),
    passes ``flash_it=False``.
    """
    mark_refused(err)
    current_app.logger.info("refused %s: %s", err.code, err.message)
    if flash_it:
        flash(str(err.message), "error")
    errors = {(field_names or {}).get(key, key): [str(err.message)] for key in err.fields}
    # A list the error names (the reads a file offers) is kept for the form to offer them.
    lists = {key: value for key, value in err.fields.items() if isinstance(value, list)}
    _keep(to, errors, {"code": err.code, "message": str(err.message), "lists": lists})
    return redirect(to, 303)


def flash_fields_to_correct(count: int) -> None:
    """The message above a form whose fields show what to correct."""
    flash(
        ngettext(
            "%(num)d field needs correcting: see below.",
            "%(num)d fields need correcting: see below.",
            count,
        ),
        "error",
    )


def refuse_form(form, to: str) -> Response:
    """A form that did not validate: its messages stay on its fields, what was typed is
    kept, and the browser is sent (303) to ``to``."""
    mark_refused()
    errors = dict(_flatten_errors(form.errors))
    flash_fields_to_correct(len(errors))
    current_app.logger.info("refused form %s: %s", type(form).__name__, sorted(errors))
    _keep(to, errors)
    return redirect(to, 303)


def show_error(form, err: DomainError, field_names: dict[str, str] | None = None) -> None:
    """A GET form (a filter, a search) whose values a rule refused: the message at the top
    of the page and on the fields it names. A GET writes nothing, so nothing is rolled
    back and nothing needs keeping; forms that POST use ``refuse``."""
    flash(str(err.message), "error")
    for key in err.fields:
        field = _find_field(form, (field_names or {}).get(key, key))
        if field is not None:
            field.errors = [*field.errors, str(err.message)]


@dataclass(frozen=True)
class KeptForm:
    """What the user typed on a refused form, and the messages per field."""

    data: MultiDict
    errors: dict[str, list[str]]
    refusal: dict | None = None  # {"code", "message", "lists"} of the refused rule

    def get(self, name: str, default: str = "") -> str:
        return self.data.get(name, default)

    def getlist(self, name: str) -> list[str]:
        return self.data.getlist(name)


EMPTY = KeptForm(MultiDict(), {})


def kept_form() -> KeptForm:
    """What was typed on this page's form before it was refused, once (a reload shows the
    page afresh). Empty when nothing was kept for this address."""
    if "kept_form" not in g:
        g.kept_form = _take_kept()
    return g.kept_form


def _take_kept() -> KeptForm:
    kept = session.get(KEPT_FORM)
    if not kept or kept.get("path") != request.path:
        return EMPTY
    session.pop(KEPT_FORM)
    if time.time() - kept.get("at", 0) > KEPT_FOR_SECONDS:
        return EMPTY
    data = MultiDict([tuple(pair) for pair in kept["data"]])
    return KeptForm(data, kept["errors"], kept.get("refusal"))


def refill(form):
    """Fill a WTForms form with what was typed before its refusal and put the messages
    back on its fields; returns the form. A form with nothing kept is left as it is."""
    kept = kept_form()
    if kept is EMPTY:
        return form
    form.process(formdata=kept.data)
    for name, messages in kept.errors.items():
        field = _find_field(form, name)
        if field is not None:
            field.errors = [*field.errors, *messages]
    return form


def _keep(to: str, errors: dict[str, list[str]], refusal: dict | None = None) -> None:
    data = [[key, value] for key, value in request.form.items(multi=True) if not SECRET.search(key)]
    session[KEPT_FORM] = {
        "path": urlsplit(to).path,
        "at": time.time(),
        "data": data,
        "errors": errors,
        "refusal": refusal,
    }
    # The session is a cookie, which browsers cap at 4 KB: the longest values are dropped
    # until it fits (long texts are kept by the page itself, static/keep-text.js).
    serializer = current_app.session_interface.get_signing_serializer(current_app)
    while data and len(serializer.dumps(dict(session))) > MAX_COOKIE_BYTES:
        data.remove(max(data, key=lambda pair: len(pair[1])))
        session.modified = True


def _flatten_errors(errors, prefix: str = ""):
    """WTForms' nested errors ({"tubes": [{"collected_at": [...]}]}) as dotted names."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key is not None:  # form-level errors have no field
                yield from _flatten_errors(value, f"{prefix}{key}.")
    elif any(isinstance(e, dict | list | tuple) for e in errors):
        for index, value in enumerate(errors):
            yield from _flatten_errors(value, f"{prefix}{index}.")
    elif errors:  # a field's messages (strings or lazy strings)
        yield prefix.rstrip("."), [str(e) for e in errors]


def _find_field(form, dotted: str):
    node = form
    for part in dotted.split("."):
        try:
            node = node[int(part)] if part.isdigit() else node[part]
        except (KeyError, TypeError, IndexError):
            return None
    return node


def file_response(content: bytes, mimetype: str, filename: str, *, inline: bool = False):
    """A file for the browser: shown (a PDF to print, a picture) or downloaded."""
    response = current_app.response_class(content, mimetype=mimetype)
    response.headers["Content-Disposition"] = content_disposition(filename, inline=inline)
    return response


# A download's name is built from codes people typed (a participant, an analyte, a label
# template): only letters, digits, "-" and "_" survive in its stem, so no quote, ";", line
# break or path can reach the header, and its extension is the one the application chose.
_NOT_IN_STEM = re.compile(r"[^\w-]+")
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})$")
MAX_STEM = 120


def download_name(filename: str) -> tuple[str, str]:
    """(ASCII name, full name) for a download: the stem reduced to a slug of letters,
    digits, "-" and "_" (accents kept in the full name, dropped in the ASCII one), the
    extension kept when it is plain letters and digits. "résultats.png" gives
    ("resultats.png", "résultats.png"); an empty stem becomes "download"."""
    filename = unicodedata.normalize("NFC", str(filename))
    match = _EXTENSION.search(filename)
    stem, extension = (filename[: match.start()], match[0].lower()) if match else (filename, "")
    full = _NOT_IN_STEM.sub("-", stem).strip("-_")[:MAX_STEM].strip("-_") or "download"
    plain = unicodedata.normalize("NFKD", full).encode("ascii", "ignore").decode("ascii")
    plain = re.sub(r"[^A-Za-z0-9_-]+", "-", plain).strip("-_") or "download"
    return plain + extension, full + extension


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """The Content-Disposition header of a file (RFC 6266): ``filename`` with the ASCII
    name, and ``filename*`` (RFC 5987, UTF-8, percent-encoded) when the name has other
    letters. The one way a response names its file."""
    plain, full = download_name(filename)
    value = f'{"inline" if inline else "attachment"}; filename="{plain}"'
    if full != plain:
        value += f"; filename*=UTF-8''{quote(full, safe='')}"
    return value


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
