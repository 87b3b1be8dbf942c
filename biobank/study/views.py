"""Pages: participants, sites, the protocol."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.errors import DomainError
from biobank.sites import services as site_services
from biobank.study import services, wording
from biobank.study.forms import LeavingForm, ParticipantForm, SiteForm, WithdrawConsentForm
from biobank.web import kept_form, refill, refuse, refuse_form

bp = Blueprint("study", __name__, template_folder="templates")
bp.add_app_template_filter(wording.from_protocol, "from_protocol")
bp.add_app_template_global(wording.protocol_lang, "protocol_lang")
PAGE = 50


@bp.route("/participants")
@requires(Permission.VIEW_SAMPLES)
def participants():
    page = max(request.args.get("page", 1, type=int), 1)
    site = request.args.get("site") or None
    arm = request.args.get("arm") or None
    result = services.list_participants(
        actor=current_user, site_code=site, arm_code=arm, limit=PAGE, offset=(page - 1) * PAGE
    )
    return render_template(
        "study/participants.html",
        result=result,
        page=page,
        page_size=PAGE,
        sites=site_services.list_sites(),
        protocol=services.current_protocol(),
        site=site,
        arm=arm,
    )


@bp.route("/participants/new", methods=["GET", "POST"])
@requires(Permission.REGISTER)
def new_participant():
    protocol = services.current_protocol()
    form = ParticipantForm()
    sites = site_services.list_sites()
    if current_user.site_id is not None:
        sites = [s for s in sites if s.id == current_user.site_id]
    form.site.choices = [
        SelectChoice(s.code, f"{s.code} — {s.name}") for s in sites if not s.is_central
    ]
    form.arm.choices = [SelectChoice(a.code, f"{a.name} — {a.description}") for a in protocol.arms]
    here = url_for("study.new_participant")
    if request.method == "GET":
        return render_template("study/participant_form.html", form=refill(form))
    if not form.validate_on_submit():
        return refuse_form(form, here)
    try:
        participant = services.register_participant(
            form.code.data,
            form.site.data,
            form.arm.data,
            form.disease_status.data,
            form.included_on.data,
            form.consent_given_on.data,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, here)
    flash(_("Participant %(code)s registered.", code=participant.code), "success")
    return redirect(url_for("study.participant", code=participant.code), 303)


@bp.route("/participants/<code>")
@requires(Permission.VIEW_SAMPLES)
def participant(code):
    found = services.get_participant(code, actor=current_user)
    done = {v.visit_code: v for v in found.visits}
    return render_template(
        "study/participant.html",
        participant=found,
        schedule=services.schedule(found),
        done=done,
        withdraw_form=refill(WithdrawConsentForm()),
        leaving_form=_leaving_form(found),
    )


def _leaving_form(participant) -> LeavingForm:
    """The leaving form, holding the record to correct; after its own refusal, what was
    typed. A refusal of the page's other form leaves it as recorded."""
    form = LeavingForm(obj=participant)
    if "left_on" in kept_form().data:
        refill(form)
    return form


# The service names the fields as the API does; the page's form, as the participant's columns.
LEAVING_FIELDS = {"left_on": "left_on", "reason": "left_reason", "note": "left_note"}


@bp.route("/participants/<code>/leaving", methods=["POST"])
@requires(Permission.APPROVE)
def record_leaving(code):
    """Record, or correct, the day the participant left the study and why."""
    participant = services.get_participant(code, actor=current_user)  # 404 out of reach
    form = LeavingForm()
    back = url_for("study.participant", code=participant.code)
    if not form.validate_on_submit():
        return refuse_form(form, back)
    try:
        participant = services.record_leaving(
            participant.code,
            form.left_on.data,
            form.left_reason.data,
            form.left_note.data or "",
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, back, field_names=LEAVING_FIELDS)
    flash(
        _(
            "%(p)s left the study on %(on)s: recorded.",
            p=participant.code,
            on=format_date(participant.left_on),
        ),
        "success",
    )
    return redirect(url_for("study.participant", code=participant.code), 303)


@bp.route("/participants/<code>/leaving", methods=["GET"])
@requires(Permission.APPROVE)
def leaving_page(code):
    """The form's address opened by a GET (a login that expired during the POST, an old
    tab): the participant's page, which holds the form."""
    return redirect(url_for("study.participant", code=code), 303)


@bp.route("/sites")
@requires(Permission.SIGNED_IN)
def sites():
    return render_template(
        "study/sites.html", sites=site_services.list_sites(), form=refill(SiteForm())
    )


@bp.route("/sites", methods=["POST"])
@requires(Permission.CONFIGURE)
def create_site():
    form = SiteForm()
    here = url_for("study.sites")
    if not form.validate_on_submit():
        return refuse_form(form, here)
    try:
        site = site_services.create_site(
            form.code.data,
            form.name.data,
            timezone=form.timezone.data,
            is_central=form.is_central.data,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, here)
    flash(_("Site %(code)s created.", code=site.code), "success")
    return redirect(here, 303)


@bp.route("/protocol")
@requires(Permission.SIGNED_IN)
def protocol():
    return render_template("study/protocol.html", protocol=services.current_protocol())
