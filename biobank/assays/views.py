"""Pages: assay runs, plate design, result imports, a participant's biological response."""

from __future__ import annotations

from flask import Blueprint

from biobank.assays import models  # noqa: F401  (the tables, for the app and migrations)

bp = Blueprint("assays", __name__, template_folder="templates")
