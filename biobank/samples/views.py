"""Pages: the scan page, aliquot details, visit registration and its result."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.custody import services as custody
from biobank.errors import DomainError
from biobank.samples import services, sprec
from biobank.samples.forms import FindParticipantForm, RegistrationForm
from biobank.samples.services import SpinEntry, TubeEntry
from biobank.study import services as study
from biobank.web import refill, refuse, refuse_form, show_error

bp = Blueprint("samples", __name__, template_folder="templates")
RECENT_EVENTS = 5


@bp.app_template_filter("sample_type")
def sample_type_filter(code: str) -> str:
    """ "Serum (SER)" in the page's language: every page that lists tubes names their
    sample type in words, the code beside it for those who know it."""
    return sprec.sample_type_name(code, get_locale().language)


@bp.route("/scan")
@requires(Permission.VIEW_SAMPLES)
def scan():
    """One input, focused on load: a keyboard-wedge scanner types the code and Enter."""
    code = request.args.get("code")
    aliquot, error, events = None, None, []
    if code is not None:
        try:
            aliquot = services.scan_aliquot(code, actor=current_user)
        except DomainError as err:
            error = err
        else:
            events = custody.history(aliquot.id, limit=RECENT_EVENTS, newest_first=True)
    status = error.status if error else 200
    return render_template(
        "samples/scan.html", code=code, aliquot=aliquot, error=error, events=events
    ), status


@bp.route("/aliquots/<barcode>")
@requires(Permission.VIEW_SAMPLES)
def aliquot(barcode):
    summary = services.scan_aliquot(barcode, actor=current_user)
    specimen = services.find_aliquot(barcode, actor=current_user).specimen
    return render_template(
        "samples/aliquot.html",
        aliquot=summary,
        specimen=specimen,
        events=custody.history(summary.id),
        sprec_elements=sprec.describe(
            specimen.sprec_code,
            others=json.loads(specimen.sprec_others),
            language=get_locale().language,
        ),
    )


@bp.route("/register")
@requires(Permission.REGISTER)
def find_participant():
    form = FindParticipantForm(request.args)
    if request.args and form.validate():
        try:
            participant = study.get_participant(form.participant.data, actor=current_user)
        except DomainError as err:
            show_error(form, err, {"participant": "participant"})
        else:
            return redirect(url_for("samples.register", code=participant.code))
    return render_template("samples/find_participant.html", form=form)


def _tube_entries(form: RegistrationForm, tz: ZoneInfo) -> list[TubeEntry]:
    """Turn the collected tubes' sections into entries, times read in the centre's zone."""

    def at(value):
        return value.replace(tzinfo=tz) if value is not None else None

    entries = []
    for section in form.tubes:
        tube = section.form
        if not tube.collected.data:
            continue
        second = None
        if tube.second_spin.data:
            second = SpinEntry(
                float(tube.second_spin_temperature_c.data),
                tube.second_spin_force_g.data,
                tube.second_spin_minutes.data,
            )
        entries.append(
            TubeEntry(
                tube_type=tube.tube_type.data,
                tube_barcode=tube.tube_barcode.data,
                collected_at=at(tube.collected_at.data),
                received_at=at(tube.received_at.data),
                precentrifugation_temperature=tube.precentrifugation_temperature.data,
                spun_at=at(tube.spun_at.data),
                spin=SpinEntry(
                    float(tube.spin_temperature_c.data),
                    tube.spin_force_g.data,
                    tube.spin_minutes.data,
                    tube.spin_braking.data,
                ),
                second_spin=second,
                postcentrifugation_temperature=tube.postcentrifugation_temperature.data,
                frozen_at=at(tube.frozen_at.data),
                storage_temperature_c=int(tube.storage_temperature_c.data),
                aliquots=tube.aliquots.data,
                volume_ul=tube.volume_ul.data,
            )
        )
    return entries


def _plan_text(definition) -> str:
    return ", ".join(
        f"{p.tube_type} {p.aliquots} × {p.volume_ul} µL" for p in definition.sample_plans
    )


def _registration_form(participant, protocol) -> RegistrationForm:
    form = RegistrationForm()
    form.visit.choices = [
        SelectChoice(d.code, f"{d.code} — {d.name} · {_plan_text(d)}")
        for d in study.visits_to_register(participant)
    ]
    if request.method == "GET":
        refill(form)
    if not form.tubes.entries:  # a fresh page: one section per tube type of the protocol
        for tube in protocol.tube_types:
            form.tubes.append_entry({"tube_type": tube.code})
    return form


@bp.route("/participants/<code>/register", methods=["GET", "POST"])
@requires(Permission.REGISTER)
def register(code):
    participant = study.get_participant(code, actor=current_user)
    protocol = study.current_protocol(participant.study_code)
    form = _registration_form(participant, protocol)
    if request.method == "GET":
        tube_types = {t.code: t for t in protocol.tube_types}
        return render_template(
            "samples/register.html", form=form, participant=participant, tube_types=tube_types
        )
    here = url_for("samples.register", code=participant.code)
    if not form.validate_on_submit():
        return refuse_form(form, here)
    tubes = _tube_entries(form, ZoneInfo(participant.site.timezone))
    try:
        result = services.register_collection(
            participant.code, form.visit.data, tubes, actor=current_user
        )
    except DomainError as err:
        index = {t.tube_type.data: str(i) for i, t in enumerate(form.tubes)}
        return refuse(err, here, field_names={key: _form_key(key, index) for key in err.fields})
    flash(
        ngettext(
            "Visit %(v)s of %(p)s registered: %(num)d aliquot.",
            "Visit %(v)s of %(p)s registered: %(num)d aliquots.",
            len(result.aliquots),
            v=result.visit.visit_code,
            p=participant.code,
        ),
        "success",
    )
    if result.visit.out_of_window:
        flash(
            _(
                "This visit was collected outside its protocol window (study day "
                "%(d)d); it is flagged.",
                d=result.visit.study_day,
            ),
            "warning",
        )
    return redirect(
        url_for("samples.visit", code=participant.code, visit_code=result.visit.visit_code), 303
    )


def _form_key(service_key: str, index: dict[str, str]) -> str:
    """'SST.frozen_at' from the service is 'tubes.0.frozen_at' on the form."""
    tube, _sep, field = service_key.partition(".")
    return f"tubes.{index[tube]}.{field}" if tube in index and field else service_key


@bp.route("/participants/<code>/visits/<visit_code>")
@requires(Permission.VIEW_SAMPLES)
def visit(code, visit_code):
    registration = services.visit_aliquots(code, visit_code, actor=current_user)
    return render_template("samples/visit.html", registration=registration)
