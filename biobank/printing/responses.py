"""The HTTP answer for rendered labels, shared by the pages and the API."""

from __future__ import annotations

from flask import Response

from biobank.printing.services import Rendered
from biobank.web import content_disposition


def label_file(rendered: Rendered) -> Response:
    """PDF and PNG open in the browser (its print dialog); ZPL downloads."""
    response = Response(rendered.content, mimetype=rendered.mimetype)
    # The name carries the label template's name and a barcode: built by the one helper.
    response.headers["Content-Disposition"] = content_disposition(
        rendered.filename, inline=rendered.format != "zpl"
    )
    response.headers["X-Label-Count"] = str(rendered.labels)
    return response
