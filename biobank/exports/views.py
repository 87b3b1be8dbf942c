"""Downloads: the trial's data as CDISC SDTM datasets."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.db import utcnow
from biobank.exports import sdtm
from biobank.web import file_response

bp = Blueprint("exports", __name__, template_folder="templates")


@bp.route("/exports/sdtm.zip")
@requires(Permission.VIEW_SAMPLES)
def sdtm_zip():
    """LB, BE, BS and RELSPEC as XPT and CSV files with their define document, in one
    zip: the participants of the user's centre, or all of them for central users."""
    package = sdtm.build(actor=current_user, created=utcnow())
    return file_response(package.zip_bytes(), "application/zip", "sdtm-export.zip")
