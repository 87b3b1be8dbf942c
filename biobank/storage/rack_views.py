"""Pages: rack-scanner import (preview, then apply)."""

from __future__ import annotations

import base64
import binascii
import zlib

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.errors import DomainError, Invalid
from biobank.storage import rack_import
from biobank.storage.rackscan import MAX_BYTES
from biobank.web import kept_form, refuse

bp = Blueprint("racks", __name__, template_folder="templates")


@bp.route("/storage/rack-scan")
@requires(Permission.HANDLE)
def rack_scan():
    box_code = (request.args.get("box") or kept_form().get("box")).strip().upper()
    return render_template("storage/rack_scan.html", preview=None, box_code=box_code)


@bp.route("/storage/rack-scan", methods=["POST"])
@requires(Permission.HANDLE)
def rack_scan_post():
    """Preview the uploaded scan; with confirm=1, apply the scan kept in the page."""
    box_code = (request.form.get("box") or "").strip().upper()
    filename = request.form.get("filename", "")
    try:
        data, filename = _scan_file(filename)
    except DomainError as err:
        return refuse(err, url_for("racks.rack_scan"))
    if request.form.get("confirm") == "1":
        try:
            applied = rack_import.apply_rack(data, box=box_code or None, actor=current_user)
        except DomainError as err:
            return refuse(err, url_for("racks.rack_scan"))
        _flash_applied(applied)
        return redirect(url_for("storage.box", barcode=applied.rack), 303)
    try:
        preview = rack_import.preview_rack(data, box=box_code or None, actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("racks.rack_scan"))
    # A preview writes nothing: shown in answer to the upload (a file cannot be kept across
    # a redirect), and applied only by the confirming form, which carries the scan.
    return render_template(
        "storage/rack_scan.html",
        preview=preview,
        box_code=box_code,
        kept=_keep(data),
        filename=filename,
    )


def _scan_file(filename: str) -> tuple[bytes, str]:
    """The scan's bytes: the uploaded file, or the copy kept in the preview page (a file
    input cannot be filled again), at most MAX_BYTES either way."""
    kept = request.form.get("data")
    if kept:
        return _unkeep(kept), filename
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Invalid(_("Choose the rack scanner's file."), fields={"file": ""})
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Invalid(
            _(
                "%(name)s is larger than 1 MB: is it the rack scanner's CSV export?",
                name=upload.filename,
            ),
            fields={"file": upload.filename},
        )
    return data, upload.filename


def _keep(data: bytes) -> str:
    # Compressed: scans are repetitive text, and a form field is capped (MAX_FORM_MEMORY_SIZE).
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def _unkeep(kept: str) -> bytes:
    try:
        packed = base64.b64decode(kept.encode("ascii"), validate=True)
        unpacker = zlib.decompressobj()
        data = unpacker.decompress(packed, MAX_BYTES + 1)
    except (binascii.Error, UnicodeEncodeError, zlib.error) as err:
        raise Invalid(
            _("The scan kept in the page is damaged: upload the file again."),
            fields={"file": ""},
        ) from err
    if len(data) > MAX_BYTES or unpacker.unconsumed_tail:
        raise Invalid(_("The file is larger than 1 MB."), fields={"file": ""})
    return data


def _flash_applied(preview: rack_import.RackPreview) -> None:
    done = len(preview.to_apply)
    if not done:
        # Applied twice (a double tap, Back then Apply again): the first one recorded it all.
        flash(
            _(
                "The box already matches this scan: nothing more was recorded in %(box)s.",
                box=preview.rack,
            ),
            "info",
        )
    else:
        flash(
            ngettext(
                "Rack scan applied to %(box)s: %(num)d tube recorded where it was read.",
                "Rack scan applied to %(box)s: %(num)d tubes recorded where they were read.",
                done,
                box=preview.rack,
            ),
            "success",
        )
    if preview.old_labels:
        flash(
            ngettext(
                "%(num)d tube was read by its old label: print its new label (%(codes)s).",
                "%(num)d tubes were read by their old labels: print their new labels (%(codes)s).",
                len(preview.old_labels),
                codes=", ".join(preview.old_labels),
            ),
            "warning",
        )
    left = len(preview.missing) + len(preview.unexpected) + len(preview.unknown)
    left += len(preview.no_read) + len(preview.blocked)
    if left:
        flash(
            _(
                "Left as they are, to check by hand: %(missing)d missing, %(unexpected)d "
                "unexpected, %(unknown)d unknown, %(no_read)d not read, %(blocked)d blocked.",
                missing=len(preview.missing),
                unexpected=len(preview.unexpected),
                unknown=len(preview.unknown),
                no_read=len(preview.no_read),
                blocked=len(preview.blocked),
            ),
            "warning",
        )
