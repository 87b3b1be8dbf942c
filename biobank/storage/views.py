"""Pages: freezers overview, box map, scan-to-store."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from biobank import dates
from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.db import utcnow
from biobank.errors import DomainError, Invalid
from biobank.samples import services as samples
from biobank.samples.views import flash_old_label
from biobank.storage import allocating, services
from biobank.web import EMPTY, kept_form, refuse

bp = Blueprint("storage", __name__, template_folder="templates")
# The tubes waiting to be stored listed on the page that stores them, oldest first.
WAITING_SHOWN = 100
MAX_EXCURSION_DAYS = 366


@bp.route("/storage")
@requires(Permission.VIEW_SAMPLES)
def overview():
    freezers, capacity = services.overview(actor=current_user)
    # ?excursions=N: the temperature excursions that ended in the last N days (the home
    # page's count links here with its own N).
    days = request.args.get("excursions", type=int)
    excursions = None
    if days is not None and 1 <= days <= MAX_EXCURSION_DAYS:
        since = utcnow() - timedelta(days=days)
        excursions = services.recent_excursions(since, actor=current_user)
    return render_template(
        "storage/overview.html",
        freezers=freezers,
        capacity=capacity,
        excursions=excursions,
        excursion_days=days,
    )


@bp.route("/boxes/<barcode>")
@requires(Permission.VIEW_SAMPLES)
def box(barcode):
    """The box map; ``?find=CODE`` highlights that tube's position (CODE: its barcode, or
    the code of its old label)."""
    found = samples.code_as_scanned(request.args.get("find") or "")
    if found:
        found = samples.old_labels([found], actor=current_user).get(found) or found
    box_map = services.box_map(barcode, actor=current_user)
    if found and not any(w.barcode == found for w in box_map.wells):
        flash(_("%(code)s is not in this box.", code=found), "warning")
    return render_template("storage/box.html", box=box_map, find=found)


@bp.route("/storage/scan")
@requires(Permission.HANDLE)
def scan_to_store():
    """Scan a box, then its tubes one after the other (a keyboard-wedge scanner types the
    code and Enter). Scanning a position first (B4), or tapping a free well, sends the next
    tube there. A tube stored elsewhere waits for its confirmation until the next scan."""
    box_code = (request.args.get("box") or "").strip()
    if not box_code:
        # The tubes registered and not stored yet: what there is to store (the home
        # page's count links here).
        waiting = samples.list_aliquots(
            actor=current_user, status="registered", limit=WAITING_SHOWN
        )
        return render_template("storage/scan_box.html", waiting=waiting)
    try:
        box_map = services.box_map(box_code, actor=current_user)
    except DomainError as err:
        return render_template(
            "storage/scan_box.html", refusal=err, scanned=samples.code_as_scanned(box_code)
        ), err.status
    kept = kept_form()
    refusal = kept.refusal
    asking = refusal is not None and refusal["code"] == "storage.confirm_move"
    return render_template(
        "storage/scan_to_store.html",
        box=box_map,
        target=request.args.get("target", ""),
        # Kept for one page only: a reload, or any other scan, drops the question.
        pending=samples.code_as_scanned(kept.get("code")) if asking else "",
        question=refusal["message"] if asking else "",
        refusal=None if asking else refusal,
        scanned=samples.code_as_scanned(kept.get("code")),
        last=request.args.get("last", ""),
    )


@bp.route("/storage/scan", methods=["POST"])
@requires(Permission.HANDLE)
def store_scanned():
    box_code = request.form.get("box", "")
    code = (request.form.get("code") or "").strip()
    target = request.form.get("target") or None
    if not code:
        return redirect(url_for("storage.scan_to_store", box=box_code, target=target), 303)
    try:
        scanned = services.scan_into_box(
            code,
            box_code,
            target=target,
            pending=request.form.get("pending"),
            confirmed=request.form.get("move") == "1",
            actor=current_user,
        )
    except DomainError as err:
        back = {"box": box_code}
        if err.code == "storage.confirm_move":
            back["target"] = target
        return refuse(err, url_for("storage.scan_to_store", **back), flash_it=False)
    if scanned.target:
        return redirect(
            url_for("storage.scan_to_store", box=scanned.box, target=scanned.target), 303
        )
    stored = scanned.stored
    if stored is None:  # another box's label: the page goes on with that box
        flash(_("Now storing into box %(box)s.", box=scanned.box), "info")
        return redirect(url_for("storage.scan_to_store", box=scanned.box), 303)
    flash_old_label(samples.old_label_read(code, stored.aliquot), stored.aliquot.barcode)
    if stored.unchanged:
        flash(
            _(
                "%(code)s is already here at %(pos)s: nothing was recorded.",
                code=stored.aliquot.barcode,
                pos=stored.position,
            ),
            "info",
        )
    elif stored.moved_from:
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
    return redirect(
        url_for("storage.scan_to_store", box=scanned.box, last=stored.aliquot.barcode), 303
    )


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
        return refuse(err, url_for("storage.allocation", code=code, visit_code=visit_code))
    flash(ngettext("%(num)d aliquot stored.", "%(num)d aliquots stored.", count), "success")
    return redirect(url_for("samples.visit", code=code, visit_code=visit_code), 303)


@bp.route("/storage/move", methods=["GET", "POST"])
@requires(Permission.HANDLE)
def move():
    """Move a box, rack or shelf: scan it, then scan where it goes."""
    if request.method == "POST":
        container = (request.form.get("container") or "").strip()
        parent = (request.form.get("parent") or "").strip()
        try:
            moved = services.move_container(container, parent, actor=current_user)
        except DomainError as err:
            return refuse(err, url_for("storage.move"), flash_it=False)
        if moved.unchanged:
            flash(
                _(
                    "%(code)s is already in %(parent)s: nothing was moved.",
                    code=moved.container.barcode,
                    parent=moved.parent.barcode,
                ),
                "info",
            )
        else:
            flash(
                _(
                    "%(code)s moved into %(parent)s.",
                    code=moved.container.barcode,
                    parent=moved.parent.barcode,
                ),
                "success",
            )
        return redirect(url_for("storage.move"), 303)
    kept = kept_form()
    # The field a refusal names is emptied for the next scan; the other one is kept.
    named = next((name for name in ("container", "parent") if name in kept.errors), "")
    return render_template(
        "storage/move.html",
        container=""
        if named == "container"
        else kept.get("container", request.args.get("container", "")),
        parent="" if named == "parent" else kept.get("parent"),
        errors=kept.errors,
        refusal=kept.refusal,
        scanned=samples.code_as_scanned(kept.get(named)) if named else "",
    )


@bp.route("/storage/check-out", methods=["GET", "POST"])
@requires(Permission.HANDLE)
def check_out():
    """Take a tube out for use (why, and where it goes); its place is kept."""
    if request.method == "POST":
        code = request.form.get("code", "")
        try:
            aliquot = services.check_out(
                code,
                request.form.get("reason", ""),
                destination=request.form.get("destination", ""),
                actor=current_user,
            )
        except DomainError as err:
            return refuse(err, url_for("storage.check_out"), flash_it=False)
        flash(_("%(code)s checked out.", code=aliquot.barcode), "success")
        flash_old_label(samples.old_label_read(code, aliquot), aliquot.barcode)
        return redirect(url_for("storage.check_out", last=aliquot.barcode), 303)
    kept = kept_form()
    refusal = kept.refusal or {}
    scanned = samples.code_as_scanned(kept.get("code"))
    # A refusal names the reason, else it is the tube's: scanned again into an empty field.
    focus = "reason" if "reason" in kept.errors else "code" if refusal else ""
    return render_template(
        "storage/check_out.html",
        form=kept,
        code=""
        if focus == "code"
        else samples.code_as_scanned(kept.get("code", request.args.get("code", ""))),
        scanned=scanned,
        focus=focus,
        # The tube to offer the return of: the one just checked out, or one that was out.
        out=request.args.get("last", "")
        or (scanned if refusal.get("code") == "aliquot.checked_out" else ""),
    )


@bp.route("/storage/return", methods=["GET", "POST"])
@requires(Permission.HANDLE)
def return_tube():
    """Put a checked-out tube back, with the volume left and whether it thawed: scan it
    (``?code=``), then confirm the volume (filled in with what it held) and the thaw."""
    if request.method == "POST":
        code = (request.form.get("code") or "").strip()
        back = url_for("storage.return_tube", code=samples.code_as_scanned(code) or None)
        try:
            volume = int(request.form.get("volume_ul", ""))
        except ValueError:
            err = Invalid(_("Enter the volume left, in µL."), fields={"volume_ul": ""})
            return refuse(err, back, flash_it=False)
        try:
            placed = services.return_aliquot(
                code,
                volume,
                thawed=request.form.get("thawed") == "1",
                box=request.form.get("box") or None,
                position=request.form.get("position") or None,
                actor=current_user,
            )
        except DomainError as err:
            return refuse(err, back, flash_it=False)
        flash(
            _("%(code)s is back at %(where)s.", code=placed.aliquot.barcode, where=placed.location),
            "success",
        )
        flash_old_label(samples.old_label_read(code, placed.aliquot), placed.aliquot.barcode)
        return redirect(url_for("storage.return_tube"), 303)
    kept = kept_form()
    code = (request.args.get("code") or "").strip()
    tube, problem = None, None
    if code:
        try:
            tube = services.to_return(code, actor=current_user)
        except DomainError as err:
            # A GET writes nothing: the answer to the scan is shown, nothing to roll back.
            problem = {"code": err.code, "message": str(err.message)}
    retried = kept is not EMPTY  # a refused return: what was typed comes back as it was
    return render_template(
        "storage/return.html",
        form=kept,
        tube=tube,
        old_label=samples.old_label_read(code, tube) if tube else None,
        scanned=samples.code_as_scanned(code),
        problem=kept.refusal or problem,
        # The field a refused return names, else the volume: the one to correct.
        focus=next((f for f in ("volume_ul", "box", "position") if f in kept.errors), "volume_ul"),
        volume=kept.get("volume_ul") if retried else (tube.volume_ul if tube else ""),
        thawed=kept.get("thawed") == "1" if retried else True,
    )


@bp.route("/storage/containers/<barcode>")
@requires(Permission.VIEW_SAMPLES)
def container(barcode):
    """Everything in a freezer (or rack…), for a failure: contents, an evacuation plan, and
    the record of a temperature excursion."""
    found = services.get_container(barcode, actor=current_user)
    plan = allocating.evacuation(barcode, actor=current_user) if request.args.get("plan") else None
    return render_template(
        "storage/container.html",
        container=found,
        contents=services.contents(barcode, actor=current_user),
        plan=plan,
        kept=kept_form(),
    )


@bp.route("/storage/containers/<barcode>/excursion", methods=["POST"])
@requires(Permission.HANDLE)
def excursion(barcode):
    zone = ZoneInfo(current_user.site_timezone or "Europe/Paris")
    try:
        started = dates.read_form(request.form, "started_at", _("Started at"))
        ended = dates.read_form(request.form, "ended_at", _("Ended at"))
    except Invalid as err:
        return refuse(err, url_for("storage.container", barcode=barcode))
    try:
        highest = float(request.form["highest_c"].replace(",", "."))
    except (KeyError, ValueError):
        highest = None
    if started is None or ended is None or highest is None:
        err = Invalid(
            _("Enter when the excursion started and ended, and the highest temperature."),
            fields={"started_at": "", "ended_at": "", "highest_c": ""},
        )
        return refuse(err, url_for("storage.container", barcode=barcode))
    started, ended = started.replace(tzinfo=zone), ended.replace(tzinfo=zone)
    try:
        count = services.record_excursion(
            barcode,
            started_at=started,
            ended_at=ended,
            highest_c=highest,
            note=request.form.get("note", ""),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("storage.container", barcode=barcode))
    flash(
        ngettext(
            "Excursion recorded on %(num)d aliquot.",
            "Excursion recorded on %(num)d aliquots.",
            count,
        ),
        "success",
    )
    return redirect(url_for("storage.container", barcode=barcode), 303)
