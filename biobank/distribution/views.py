"""Pages of requests: the catalogue, a researcher's requests, the manager's review, the
technician's pick list, consent withdrawal. Shipments and receipt: shipment_views.py."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.distribution import contacts, disclosure, paperwork, services, shipping
from biobank.distribution import criteria as criteria_module
from biobank.distribution.forms import CatalogueFilterForm, RequestForm
from biobank.distribution.models import REQUEST_STATUSES
from biobank.errors import DomainError
from biobank.samples.views import flash_old_label
from biobank.study import services as study
from biobank.web import file_response, kept_form, refill, refuse, refuse_form, show_error

bp = Blueprint("distribution", __name__, template_folder="templates")


def form_page(
    blueprint: Blueprint, rule: str, name: str, page: str, permission: Permission
) -> None:
    """Answer a GET at a form's address ``rule`` with the page ``page`` that holds the form
    (303), under the endpoint ``name``.

    A browser lands there by a GET when a login expired during a POST (the login sends it
    back to the form's address), from an old tab or a bookmark: it must find the page,
    never "This address does not accept that kind of request"."""

    def show_the_page(**values):
        return redirect(url_for(page, **values), 303)

    show_the_page.__name__ = name
    blueprint.add_url_rule(rule, name, requires(permission)(show_the_page), methods=["GET"])


def paper_response(paper: paperwork.Paper):
    """A PDF opens in the browser (to print); a spreadsheet downloads."""
    inline = paper.mimetype == "application/pdf"
    return file_response(paper.content, paper.mimetype, paper.filename, inline=inline)


# --- catalogue ---------------------------------------------------------------------------


@bp.route("/catalogue")
@requires(Permission.CATALOGUE)
def catalogue():
    """Available aliquots by arm × visit × sample type, without identifying anyone."""
    form = CatalogueFilterForm(request.args)
    form.offer(study.current_protocol())
    rows = []
    try:
        wanted = criteria_module.parse(form.criteria_data() if form.validate() else {})
        rows = disclosure.catalogue(wanted, actor=current_user)
    except DomainError as err:
        show_error(form, err)
    threshold, base = disclosure.settings()
    return render_template(
        "distribution/catalogue.html",
        form=form,
        rows=rows,
        exact=disclosure.sees_exact(current_user),
        threshold=threshold,
        base=base,
    )


# --- requests ----------------------------------------------------------------------------


@bp.route("/requests")
@requires(Permission.SIGNED_IN)
def requests_list():
    # ?status= may repeat: the home page links to those awaiting review (submitted or
    # under review) and to those to pick (approved or being prepared).
    chosen = [s for s in request.args.getlist("status") if s in REQUEST_STATUSES]
    page = services.list_requests(actor=current_user, status=chosen, limit=200)
    return render_template(
        "distribution/requests.html", page=page, chosen=chosen, statuses=REQUEST_STATUSES
    )


@bp.route("/requests/new", methods=["GET", "POST"])
@requires(Permission.CATALOGUE)
def new_request():
    """A request: what, for what, where to; the match count updates as the criteria change."""
    form = RequestForm(request.form if request.method == "POST" else request.args)
    form.offer(study.current_protocol())
    here = url_for("distribution.new_request")
    if request.method == "POST":
        if not form.validate_on_submit():
            return refuse_form(form, here)
        try:
            created = services.submit_request(
                title=form.title.data,
                aim=form.aim.data,
                receiving_lab=form.receiving_lab.data,
                contact_name=form.contact_name.data,
                contact_email=form.contact_email.data,
                criteria=criteria_module.parse(form.criteria_data()),
                actor=current_user,
            )
        except DomainError as err:
            return refuse(err, here)
        flash(_("Request %(code)s submitted for review.", code=created.code), "success")
        return redirect(url_for("distribution.request_page", request_id=created.id), 303)
    refill(form)
    match = None
    if form.visits.data and form.sample_types.data:
        try:
            match = disclosure.match_count(
                criteria_module.parse(form.criteria_data()), actor=current_user
            )
        except DomainError:
            match = None
    return render_template(
        "distribution/request_form.html",
        form=form,
        match=match,
        threshold=disclosure.settings()[0],
    )


@bp.route("/requests/<int:request_id>")
@requires(Permission.SIGNED_IN)
def request_page(request_id):
    found = services.get_request(request_id, actor=current_user)
    return render_template(
        "distribution/request.html",
        req=found,
        criteria=services.criteria_of(found),
        summary=services.reservation_summary(found.id),
        shipments=shipping.shipments_of(found.id, actor=current_user),
        arrival=shipping.request_receipt(found.id),
        kept=kept_form(),
        contact_changeable=contacts.changeable(found),
        contact_confirmable=found.status in contacts.OPEN_FOR_CONTACT,
    )


@bp.route("/requests/<int:request_id>/cancel", methods=["POST"])
@requires(Permission.CATALOGUE)
def cancel(request_id):
    try:
        services.cancel(request_id, request.form.get("reason", ""), actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("distribution.request_page", request_id=request_id))
    flash(_("Request cancelled; its aliquots are released."), "success")
    return redirect(url_for("distribution.request_page", request_id=request_id), 303)


@bp.route("/requests/<int:request_id>/contact", methods=["POST"])
@requires(Permission.CATALOGUE)
def change_contact(request_id):
    here = url_for("distribution.request_page", request_id=request_id)
    try:
        contacts.change_contact(
            request_id,
            contact_name=request.form.get("contact_name", ""),
            contact_email=request.form.get("contact_email", ""),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, here)
    flash(_("Contact changed. A manager confirms the address before it is e-mailed."), "success")
    return redirect(here, 303)


@bp.route("/requests/<int:request_id>/contact/confirm", methods=["POST"])
@requires(Permission.APPROVE)
def confirm_contact(request_id):
    here = url_for("distribution.request_page", request_id=request_id)
    try:
        confirmed = contacts.confirm_contact(
            request_id, request.form.get("contact_email", ""), actor=current_user
        )
    except DomainError as err:
        return refuse(err, here)
    flash(
        _(
            "%(email)s confirmed: the request's notices go there too.",
            email=confirmed.contact_email,
        ),
        "success",
    )
    return redirect(here, 303)


# --- review ------------------------------------------------------------------------------


def _optional_int(name: str) -> int | None:
    value = (request.values.get(name) or "").strip()
    return int(value) if value.isdigit() else None


@bp.route("/requests/<int:request_id>/review")
@requires(Permission.APPROVE)
def review(request_id):
    """The aliquots an approval would reserve, with what the rules held back."""
    found = services.get_request(request_id, actor=current_user)
    proposal, error = None, None
    if found.status not in services.OPEN_FOR_RESERVATION:
        # Decided already: no proposal, so no second set of aliquots to approve.
        return render_template(
            "distribution/review.html",
            req=found,
            criteria=services.criteria_of(found),
            proposal=None,
            error=None,
            kept=kept_form(),
        )
    try:
        proposal = services.propose(
            request_id,
            per_participant_visit=_optional_int("per_participant_visit"),
            max_participants=_optional_int("max_participants"),
            allow_last=request.args.get("allow_last") == "1",
            actor=current_user,
        )
    except DomainError as err:
        error = err
        flash(str(err.message), "error")
    return render_template(
        "distribution/review.html",
        req=found,
        criteria=services.criteria_of(found),
        proposal=proposal,
        error=error,
        kept=kept_form(),
    )


@bp.route("/requests/<int:request_id>/start-review", methods=["POST"])
@requires(Permission.APPROVE)
def start_review(request_id):
    try:
        services.start_review(request_id, actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("distribution.request_page", request_id=request_id))
    return redirect(url_for("distribution.review", request_id=request_id), 303)


@bp.route("/requests/<int:request_id>/approve", methods=["POST"])
@requires(Permission.APPROVE)
def approve(request_id):
    back = url_for(
        "distribution.review",
        request_id=request_id,
        per_participant_visit=request.form.get("per_participant_visit") or None,
        max_participants=request.form.get("max_participants") or None,
        allow_last=request.form.get("allow_last") or None,
    )
    try:
        approval = services.approve(
            request_id,
            request.form.get("aliquots", "").split(),
            per_participant_visit=_optional_int("per_participant_visit"),
            override_reason=request.form.get("override_reason", ""),
            note=request.form.get("note", ""),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, back)
    flash(
        ngettext(
            "Approved: %(num)d aliquot reserved.",
            "Approved: %(num)d aliquots reserved.",
            approval.reserved,
        ),
        "success",
    )
    return redirect(url_for("distribution.request_page", request_id=request_id), 303)


@bp.route("/requests/<int:request_id>/reject", methods=["POST"])
@requires(Permission.APPROVE)
def reject(request_id):
    try:
        services.reject(request_id, request.form.get("reason", ""), actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("distribution.review", request_id=request_id))
    flash(_("Request rejected; the researcher is told why."), "success")
    return redirect(url_for("distribution.request_page", request_id=request_id), 303)


# --- picking -----------------------------------------------------------------------------


@bp.route("/requests/<int:request_id>/pick")
@requires(Permission.HANDLE)
def pick(request_id):
    """Pick by scan: the right tube is ticked and checked out, any other is refused loudly."""
    kept = kept_form()
    return render_template(
        "distribution/pick.html",
        pick_list=shipping.pick_list(request_id, actor=current_user),
        code=kept.get("code"),
        error=kept.refusal,
        ok=request.args.get("ok"),
    )


@bp.route("/requests/<int:request_id>/pick", methods=["POST"])
@requires(Permission.HANDLE)
def pick_scanned(request_id):
    here = url_for("distribution.pick", request_id=request_id)
    try:
        picked = shipping.pick(request_id, request.form.get("code", ""), actor=current_user)
    except DomainError as err:
        return refuse(err, here, flash_it=False)
    flash_old_label(picked.old_label, picked.barcode)
    return redirect(url_for("distribution.pick", request_id=request_id, ok=picked.barcode), 303)


@bp.route("/requests/<int:request_id>/pick-list.pdf")
@requires(Permission.HANDLE)
def pick_list_pdf(request_id):
    return paper_response(paperwork.pick_list_pdf(request_id, actor=current_user))


# A GET at the address of each form of these pages: the page that holds the form.
for _rule, _name, _page, _permission in (
    ("/requests/<int:request_id>/cancel", "cancel_page", "request_page", Permission.CATALOGUE),
    ("/requests/<int:request_id>/contact", "contact_page", "request_page", Permission.CATALOGUE),
    (
        "/requests/<int:request_id>/contact/confirm",
        "confirm_contact_page",
        "request_page",
        Permission.APPROVE,
    ),
    (
        "/requests/<int:request_id>/start-review",
        "start_review_page",
        "request_page",
        Permission.APPROVE,
    ),
    ("/requests/<int:request_id>/approve", "approve_page", "review", Permission.APPROVE),
    ("/requests/<int:request_id>/reject", "reject_page", "review", Permission.APPROVE),
):
    form_page(bp, _rule, _name, f"distribution.{_page}", _permission)
