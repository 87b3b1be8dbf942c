"""Pages: an existing inventory's spreadsheet uploaded, previewed and applied.

Upload (POST) → the file is kept (``kept``) and the browser sent to its preview (GET,
which reads and checks it, writing nothing) → apply (POST, the kept file found by its
SHA-256) → the import's summary (GET). Post/Redirect/Get throughout: a reload or Back
never applies a file twice, and a second apply is refused with when and by whom.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.errors import DomainError, Invalid, NotFound
from biobank.inventory import kept, services, template
from biobank.sites.services import list_sites
from biobank.web import file_response, kept_form, refuse

bp = Blueprint("inventory", __name__, template_folder="templates")
# The preview lists this many problems; the whole list is in the command line's JSON.
SHOWN_PROBLEMS = 1_000
# The summary lists this many visits, each with its labels' page.
SHOWN_VISITS = 500
# The largest id a database integer holds: beyond it an import is simply not found.
MAX_ID = 2**31 - 1
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.route("/inventory/import")
@requires(Permission.REGISTER)
def import_page():
    sites = list_sites() if current_user.site_id is None else []
    return render_template("inventory/import.html", sites=sites, kept=kept_form())


@bp.route("/inventory/template.xlsx")
@requires(Permission.REGISTER)
def template_download():
    name = _("inventory-template") + ".xlsx"
    return file_response(template.workbook(), XLSX, name)


@bp.route("/inventory/import", methods=["POST"])
@requires(Permission.REGISTER)
def upload():
    """Keep the uploaded file for its preview; nothing of the bank is written."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        err = Invalid(_("Choose the inventory file (.xlsx or .csv)."), fields={"file": ""})
        return refuse(err, url_for("inventory.import_page"))
    sha = kept.keep(upload.stream.read(), upload.filename, current_user.id)
    site = (request.form.get("site") or "").strip().upper()
    return redirect(url_for("inventory.preview_page", file=sha, site=site or None), 303)


@bp.route("/inventory/import/preview")
@requires(Permission.REGISTER)
def preview_page():
    sha = request.args.get("file", "")
    site = request.args.get("site") or None
    record = services.applied_import(sha) if sha else None
    if record is not None:
        return render_template(
            "inventory/preview.html", report=None, applied=record,
            applied_by=services.applied_by(record), site=site,
        )  # fmt: skip
    found = kept.kept(sha, current_user.id)
    if found is None:
        flash(_("This file is no longer kept on the server: upload it again."), "error")
        return redirect(url_for("inventory.import_page"))
    data, filename = found
    try:
        report = services.preview(data, filename, actor=current_user, site_code=site)
    except DomainError as err:
        flash(str(err.message), "error")
        return redirect(url_for("inventory.import_page"))
    return render_template(
        "inventory/preview.html", report=report, applied=None, site=site,
        shown=report.errors[:SHOWN_PROBLEMS],
    )  # fmt: skip


@bp.route("/inventory/import/apply", methods=["POST"])
@requires(Permission.REGISTER)
def apply_import():
    sha = request.form.get("file", "")
    site = request.form.get("site") or None
    back = url_for("inventory.preview_page", file=sha, site=site)
    found = kept.kept(sha, current_user.id)
    if found is None:
        err = Invalid(
            _("This file is no longer kept on the server: upload it again."), fields={"file": ""}
        )
        return refuse(err, url_for("inventory.import_page"))
    data, filename = found
    try:
        report = services.apply(data, filename, actor=current_user, site_code=site)
    except DomainError as err:
        return refuse(err, back)
    flash(
        ngettext(
            "%(name)s imported: %(num)d aliquot registered with a new barcode.",
            "%(name)s imported: %(num)d aliquots registered with new barcodes.",
            report.created["aliquots"],
            name=filename,
        ),
        "success",
    )
    return redirect(url_for("inventory.summary", id=report.applied.id), 303)


@bp.route("/inventory/import/done")
@requires(Permission.REGISTER)
def summary():
    try:
        import_id = int(request.args.get("id", ""))
    except ValueError:
        import_id = 0
    if not 0 < import_id <= MAX_ID:
        raise NotFound(_("No inventory import %(id)s.", id=request.args.get("id", "")))
    found = services.import_summary(import_id, actor=current_user)
    return render_template(
        "inventory/summary.html", summary=found, visits=found.visits[:SHOWN_VISITS]
    )
