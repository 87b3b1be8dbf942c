"""The HTTP answer for rendered labels, shared by the pages and the API."""

from __future__ import annotations

from flask import Response

from biobank.printing.services import Rendered


def label_file(rendered: Rendered) -> Response:
    """PDF and PNG open in the browser (its print dialog); ZPL downloads."""
    disposition = "attachment" if rendered.format == "zpl" else "inline"
    response = Response(rendered.content, mimetype=rendered.mimetype)
    response.headers["Content-Disposition"] = f'{disposition}; filename="{rendered.filename}"'
    response.headers["X-Label-Count"] = str(rendered.labels)
    return response
