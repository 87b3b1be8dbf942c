"""Pages of shipments: packing by scan, dispatch, manifest, receipt by scan or rack file,
the laboratory's use, storing a received transfer; and the withdrawal of consent."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_timezone, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from biobank import dates
from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.distribution import paperwork, shipping
from biobank.distribution.models import SHIPMENT_STATUSES
from biobank.distribution.shipping import Dispatch
from biobank.distribution.views import form_page, paper_response
from biobank.errors import DomainError, Invalid
from biobank.i18n import label
from biobank.samples import services as samples
from biobank.samples.views import flash_old_label
from biobank.sites import services as sites
from biobank.storage import allocating
from biobank.study import services as study
from biobank.study.forms import WithdrawConsentForm
from biobank.web import add_panel, kept_form, refuse, refuse_form

bp = Blueprint("shipments", __name__, template_folder="templates")


def _local_time(name: str, label: str) -> datetime | None:
    """A date and time field, read in the user's time zone; empty means now."""
    naive = dates.read_form(request.form, name, label)
    return None if naive is None else naive.replace(tzinfo=ZoneInfo(str(get_timezone())))


def _number(name: str, kind=float):
    text = (request.form.get(name) or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise Invalid(_("Enter a number."), fields={name: text}) from None


def _back(code: str, endpoint: str = "shipments.shipment", **args):
    return redirect(url_for(endpoint, code=code, **args), 303)


@bp.route("/shipments")
@requires(Permission.HANDLE)
def shipments():
    status = request.args.get("status") or None
    status = status if status in SHIPMENT_STATUSES else None
    # The home page's counts link here: shipments to receive, and those with tubes missing.
    coming_here = request.args.get("incoming") == "1"
    missing = request.args.get("missing") == "1"
    page = shipping.list_shipments(
        actor=current_user, status=status, coming_here=coming_here, missing=missing, limit=200
    )
    return render_template(
        "distribution/shipments.html",
        page=page,
        status=status,
        statuses=SHIPMENT_STATUSES,
        sites=sites.list_sites(),
        coming_here=coming_here,
        missing=missing,
    )


@bp.route("/shipments", methods=["POST"])
@requires(Permission.HANDLE)
def create():
    """Start packing: for a request (from its page) or a transfer to another site."""
    request_id = request.form.get("request_id", "")
    try:
        shipment = shipping.create_shipment(
            request_id=int(request_id) if request_id.isdigit() else None,
            destination_site=request.form.get("destination_site") or None,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("shipments.shipments"))
    return redirect(url_for("shipments.shipment", code=shipment.code), 303)


@bp.route("/shipments/<code>")
@requires(Permission.HANDLE)
def shipment(code):
    found = shipping.get_shipment(code, actor=current_user)
    kept = kept_form()
    return render_template(
        "distribution/shipment.html",
        shipment=found,
        lines=paperwork.manifest_lines(found, actor=current_user),
        receipt=shipping.receipt(found.code, actor=current_user),
        error=kept.refusal if kept.get("scan") else None,
        code=kept.get("code"),
        kept=kept,
        last=request.args.get("last"),
    )


@bp.route("/shipments/<code>/items", methods=["POST"])
@requires(Permission.HANDLE)
def pack(code):
    """Scan a tube into the next free place of the shipping boxes."""
    try:
        scanned = request.form.get("code", "")
        item = shipping.add_to_shipment(code, scanned, actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("shipments.shipment", code=code), flash_it=False)
    flash_old_label(samples.old_label_read(scanned, item.aliquot), item.aliquot.barcode)
    return redirect(url_for("shipments.shipment", code=code, last=item.aliquot.barcode), 303)


@bp.route("/shipments/<code>/items/remove", methods=["POST"])
@requires(Permission.HANDLE)
def unpack(code):
    try:
        shipping.remove_from_shipment(code, request.form.get("code", ""), actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("shipments.shipment", code=code))
    return _back(code)


@bp.route("/shipments/<code>/dispatch", methods=["POST"])
@requires(Permission.HANDLE)
def dispatch(code):
    try:
        details = Dispatch(
            carrier=request.form.get("carrier", ""),
            tracking_number=request.form.get("tracking_number", ""),
            dry_ice=request.form.get("dry_ice") == "1",
            dry_ice_kg=_number("dry_ice_kg"),
            logger_id=request.form.get("logger_id", ""),
            dispatched_at=_local_time("dispatched_at", _("Dispatched at")),
        )
        sent = shipping.dispatch(code, details, actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("shipments.shipment", code=code))
    flash(
        ngettext("%(num)d tube dispatched.", "%(num)d tubes dispatched.", len(sent.items)),
        "success",
    )
    return _back(code)


@bp.route("/shipments/<code>/manifest.<fmt>")
@requires(Permission.HANDLE)
def manifest(code, fmt):
    if fmt not in ("pdf", "xlsx"):
        raise Invalid(_("The manifest is a PDF or an xlsx file."), fields={"format": fmt})
    return paper_response(paperwork.manifest(code, fmt, actor=current_user))


# --- receipt -----------------------------------------------------------------------------


@bp.route("/shipments/<code>/receive")
@requires(Permission.HANDLE)
def receive(code):
    found = shipping.receipt(code, actor=current_user)
    kept = kept_form()
    return render_template(
        "distribution/receive.html",
        receipt=found,
        error=kept.refusal if kept.get("scan") else None,
        checked=shipping.last_checked(found, request.args.get("last")),
        statuses=found.statuses(),
        code=kept.get("code"),
        kept=kept,
    )


@bp.route("/shipments/<code>/check-in", methods=["POST"])
@requires(Permission.HANDLE)
def check_in(code):
    """One arriving tube scanned against the manifest; after the receipt, a missing tube
    that turned up."""
    try:
        checked = shipping.check_in(
            code,
            request.form.get("code", ""),
            damaged=request.form.get("damaged") == "1",
            note=request.form.get("note", ""),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("shipments.receive", code=code), flash_it=False)
    flash_old_label(checked.old_label, checked.barcode)
    return _back(code, "shipments.receive", last=checked.barcode)


@bp.route("/shipments/<code>/check-in-rack", methods=["POST"])
@requires(Permission.HANDLE)
def check_in_rack(code):
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise Invalid(_("Choose the rack scanner's file."), fields={"file": ""})
        checked = shipping.check_in_rack(code, upload.read(), actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("shipments.receive", code=code))
    flash(ngettext("%(num)d tube read.", "%(num)d tubes read.", len(checked)), "success")
    return _back(code, "shipments.receive")


@bp.route("/shipments/<code>/receipt", methods=["POST"])
@requires(Permission.HANDLE)
def complete_receipt(code):
    try:
        done = shipping.complete_receipt(
            code,
            received_at=_local_time("received_at", _("Received at")),
            condition=request.form.get("condition", ""),
            temperature_c=_number("temperature_c"),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("shipments.receive", code=code))
    flash(
        _(
            "Receipt recorded: %(ok)d received, %(damaged)d damaged, %(missing)d missing.",
            ok=len(done.received),
            damaged=len(done.damaged),
            missing=len(done.missing),
        ),
        "success" if not done.missing else "warning",
    )
    return _back(code)


@bp.route("/shipments/<code>/use", methods=["POST"])
@requires(Permission.HANDLE)
def use(code):
    """What the laboratory did with a received tube: used up (how much) or sent back."""
    try:
        used = _number("used_ul", int)
        if used is None:
            raise Invalid(_("Enter the volume used, in µL."), fields={"used_ul": ""})
        aliquot = shipping.record_use(
            code,
            request.form.get("code", ""),
            used,
            returned=request.form.get("returned") == "1",
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("shipments.shipment", code=code))
    flash(
        _("%(code)s: %(status)s.", code=aliquot.barcode, status=label(aliquot.status, "status")),
        "success",
    )
    return _back(code)


@bp.route("/shipments/<code>/store")
@requires(Permission.HANDLE)
def store(code):
    """Freezer positions for the tubes of a received transfer, to confirm or edit."""
    plan = allocating.propose(shipping.to_store(code, actor=current_user), actor=current_user)
    return render_template(
        "storage/allocation.html",
        plan=plan,
        heading=_("Where to store the tubes of shipment %(code)s", code=code.upper()),
        action=url_for("shipments.store_all", code=code),
    )


@bp.route("/shipments/<code>/store", methods=["POST"])
@requires(Permission.HANDLE)
def store_all(code):
    rows = zip(
        request.form.getlist("barcode"),
        request.form.getlist("box"),
        request.form.getlist("position"),
        strict=False,
    )
    try:
        count = allocating.store_all(
            [(b, box, pos) for b, box, pos in rows if b and box], actor=current_user
        )
    except DomainError as err:
        return refuse(err, url_for("shipments.store", code=code))
    flash(ngettext("%(num)d aliquot stored.", "%(num)d aliquots stored.", count), "success")
    return _back(code)


# --- a missing tube found ----------------------------------------------------------------


@bp.route("/aliquots/<barcode>/found", methods=["POST"])
@requires(Permission.HANDLE)
def found(barcode):
    """A tube recorded missing at a receipt turned up (from its page)."""
    page = url_for("samples.aliquot", barcode=barcode)
    try:
        aliquot = shipping.record_found(
            barcode,
            request.form.get("where", ""),
            note=request.form.get("note", ""),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, page)
    flash(
        _(
            "%(code)s recorded found. Store it again (Return, into a box), or receive it on "
            "its shipment's receive page if it reached the laboratory.",
            code=aliquot.barcode,
        ),
        "success",
    )
    return redirect(page, 303)


def _aliquot_panel(aliquot_id: int) -> str:
    found = shipping.travels_of(aliquot_id)
    if not found.travels:
        return ""
    return render_template("distribution/_aliquot_travels.html", found=found, kept=kept_form())


def register_panels() -> None:
    """The shipments an aliquot travelled in, on its page (samples sits below us)."""
    add_panel("aliquot", _aliquot_panel)


# --- consent withdrawal ------------------------------------------------------------------


@bp.route("/participants/<code>/withdraw-consent", methods=["POST"])
@requires(Permission.APPROVE)
def withdraw_consent(code):
    """Record the withdrawal: distribution stops at once; the page lists what to destroy."""
    form = WithdrawConsentForm()
    back = url_for("study.participant", code=code)
    if not form.validate_on_submit():
        return refuse_form(form, back)
    try:
        affected = shipping.withdraw_consent(code, form.withdrawn_on.data, actor=current_user)
    except DomainError as err:
        return refuse(err, back)
    flash(
        ngettext(
            "Consent withdrawal recorded. %(num)d aliquot is affected.",
            "Consent withdrawal recorded. %(num)d aliquots are affected.",
            len(affected),
        ),
        "warning",
    )
    return redirect(url_for("shipments.withdrawn", code=code), 303)


@bp.route("/participants/<code>/withdrawn-aliquots")
@requires(Permission.APPROVE)
def withdrawn(code):
    participant = study.get_participant(code, actor=current_user)
    affected = shipping.affected_by_withdrawal(participant.code, actor=current_user)
    return render_template(
        "distribution/withdrawn.html", participant=participant, affected=affected
    )


@bp.route("/participants/<code>/withdrawn-aliquots", methods=["POST"])
@requires(Permission.APPROVE)
def destroy(code):
    try:
        count = shipping.destroy_withdrawn(
            code,
            request.form.getlist("aliquot"),
            request.form.get("reason", ""),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("shipments.withdrawn", code=code))
    flash(
        ngettext(
            "%(num)d aliquot recorded as destroyed.",
            "%(num)d aliquots recorded as destroyed.",
            count,
        ),
        "success",
    )
    return redirect(url_for("shipments.withdrawn", code=code), 303)


# A GET at the address of each form of these pages: the page that holds the form.
for _rule, _name, _page, _permission in (
    ("/shipments/<code>/items", "pack_page", "shipments.shipment", Permission.HANDLE),
    ("/shipments/<code>/items/remove", "unpack_page", "shipments.shipment", Permission.HANDLE),
    ("/shipments/<code>/dispatch", "dispatch_page", "shipments.shipment", Permission.HANDLE),
    ("/shipments/<code>/check-in", "check_in_page", "shipments.receive", Permission.HANDLE),
    ("/shipments/<code>/check-in-rack", "rack_page", "shipments.receive", Permission.HANDLE),
    ("/shipments/<code>/receipt", "receipt_page", "shipments.receive", Permission.HANDLE),
    ("/shipments/<code>/use", "use_page", "shipments.shipment", Permission.HANDLE),
    ("/aliquots/<barcode>/found", "found_page", "samples.aliquot", Permission.HANDLE),
    (
        "/participants/<code>/withdraw-consent",
        "withdraw_consent_page",
        "study.participant",
        Permission.APPROVE,
    ),
):
    form_page(bp, _rule, _name, _page, _permission)
