"""Pages: freezers overview, box map, scan-to-store."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.errors import DomainError
from biobank.storage import allocating, services
from biobank.storage.positions import PositionError

bp = Blueprint("storage", __name__, template_folder="templates")


@bp.route("/storage")
@requires(Permission.VIEW_SAMPLES)
def overview():
    freezers, capacity = services.overview(actor=current_user)
    return render_template("storage/overview.html", freezers=freezers, capacity=capacity)


@bp.route("/boxes/<barcode>")
@requires(Permission.VIEW_SAMPLES)
def box(barcode):
    """The box map; ``?find=CODE`` highlights that tube's position."""
    found = (request.args.get("find") or "").strip().upper()
    box_map = services.box_map(barcode, actor=current_user)
    if found and not any(w.barcode == found for w in box_map.wells):
        flash(_("%(code)s is not in this box.", code=found), "warning")
    return render_template("storage/box.html", box=box_map, find=found)


@bp.route("/storage/scan")
@requires(Permission.HANDLE)
def scan_to_store():
    """Scan a box, then its tubes one after the other (a keyboard-wedge scanner types the
    code and Enter). Scanning a position first (B4) sends the next tube there."""
    box_code = (request.args.get("box") or "").strip()
    if not box_code:
        return render_template("storage/scan_box.html")
    try:
        box_map = services.box_map(box_code, actor=current_user)
    except DomainError as err:
        flash(str(err.message), "error")
        return render_template("storage/scan_box.html"), err.status
    return render_template(
        "storage/scan_to_store.html",
        box=box_map,
        target=request.args.get("target", ""),
        confirm=request.args.get("confirm", ""),
        last=request.args.get("last", ""),
    )


@bp.route("/storage/scan", methods=["POST"])
@requires(Permission.HANDLE)
def store_scanned():
    box_code = request.form.get("box", "")
    code = (request.form.get("code") or "").strip()
    target = request.form.get("target") or None
    back = {"box": box_code}
    if not code:
        return redirect(url_for("storage.scan_to_store", **back))
    box_map = services.box_map(box_code, actor=current_user)
    try:
        position = box_map.grid.canonical(code)
    except PositionError:
        position = None
    if position is not None:  # a position scanned or typed: the next tube goes there
        return redirect(url_for("storage.scan_to_store", target=position, **back))
    try:
        stored = services.store(
            code, box_code, target, move=request.form.get("move") == "1", actor=current_user
        )
    except DomainError as err:
        flash(str(err.message), "error")
        if err.code == "storage.confirm_move":
            back.update(confirm=code, target=target or "")
        return redirect(url_for("storage.scan_to_store", **back))
    if stored.moved_from:
        flash(
            _(
                "%(code)s moved to %(pos)s (it was at %(old)s).",
                code=stored.aliquot.barcode,
                pos=stored.position,
                old=stored.moved_from,
            ),
            "success",
        )
    else:
        flash(
            _("%(code)s stored at %(pos)s.", code=stored.aliquot.barcode, pos=stored.position),
            "success",
        )
    return redirect(url_for("storage.scan_to_store", last=stored.aliquot.barcode, **back))


@bp.route("/participants/<code>/visits/<visit_code>/allocation")
@requires(Permission.HANDLE)
def allocation(code, visit_code):
    """Proposed positions for a visit's aliquots, to confirm or edit."""
    plan = allocating.propose_for_visit(code, visit_code, actor=current_user)
    return render_template("storage/allocation.html", plan=plan, code=code, visit_code=visit_code)


@bp.route("/participants/<code>/visits/<visit_code>/allocation", methods=["POST"])
@requires(Permission.HANDLE)
def store_allocation(code, visit_code):
    rows = zip(
        request.form.getlist("barcode"),
        request.form.getlist("box"),
        request.form.getlist("position"),
        strict=False,
    )
    placements = [(b, box, pos) for b, box, pos in rows if b and box]
    try:
        count = allocating.store_all(placements, actor=current_user)
    except DomainError as err:
        flash(str(err.message), "error")
        return redirect(url_for("storage.allocation", code=code, visit_code=visit_code))
    flash(ngettext("%(num)d aliquot stored.", "%(num)d aliquots stored.", count), "success")
    return redirect(url_for("samples.visit", code=code, visit_code=visit_code))
