"""Pages: the scan page, aliquot details, visit registration and its result."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.custody import services as custody
from biobank.errors import DomainError
from biobank.i18n import label
from biobank.samples import deviations, services, sprec
from biobank.samples.forms import FindParticipantForm, RegistrationForm
from biobank.samples.services import NotCollected, SpinEntry, TubeEntry
from biobank.study import services as study
from biobank.study import wording
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
        "samples/scan.html",
        code=code,
        aliquot=aliquot,
        error=error,
        events=events,
        old_label=services.old_label_read(code, aliquot) if aliquot else None,
    ), status


@bp.route("/aliquots/<barcode>")
@requires(Permission.VIEW_SAMPLES)
def aliquot(barcode):
    """An aliquot's page, by its barcode or by its old label (shown then with the
    suggestion to print its new label)."""
    found = services.find_aliquot(barcode, actor=current_user)
    summary = services.scan_aliquot(found.barcode, actor=current_user)
    specimen = found.specimen
    return render_template(
        "samples/aliquot.html",
        aliquot=summary,
        old_label=services.old_label_read(barcode, found),
        specimen=specimen,
        deviations=services.aliquot_deviations(found),
        events=custody.history(summary.id),
        sprec_elements=sprec.describe(
            specimen.sprec_code,
            others=json.loads(specimen.sprec_others),
            language=get_locale().language,
        ),
    )


def flash_old_label(old_label: str | None, barcode: str) -> None:
    """After a tube was handled by scanning its old label (a tube of an imported
    inventory, ``services.old_label_read``): say so, with both codes and a link to print
    its new label. Nothing when ``old_label`` is None."""
    if old_label is not None:
        notice = render_template("samples/_old_label.html", old_label=old_label, barcode=barcode)
        flash(Markup(notice), "warning")


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


def _not_collected_entries(form: RegistrationForm) -> list[NotCollected]:
    """The unticked tubes' sections: each a tube not drawn, with its reason and note."""
    return [
        NotCollected(
            tube.tube_type.data,
            tube.not_collected_reason.data or "",
            tube.not_collected_note.data or "",
        )
        for tube in (section.form for section in form.tubes)
        if not tube.collected.data
    ]


def _plan_text(definition) -> str:
    return ", ".join(
        f"{p.tube_type} {p.aliquots} × {p.volume_ul} µL" for p in definition.sample_plans
    )


def _registration_form(participant, protocol) -> RegistrationForm:
    form = RegistrationForm()
    # The protocol's words only: the option names its language (a found tube's does not).
    in_protocol_lang = {"lang": lang} if (lang := wording.protocol_lang()) else None
    form.visit.choices = [
        SelectChoice(d.code, f"{d.code} — {d.name} · {_plan_text(d)}", render_kw=in_protocol_lang)
        for d in study.visits_to_register(participant)
    ]
    # A registered visit with a tube recorded as not collected: the tube may be found.
    form.visit.choices += [
        SelectChoice(
            v.visit_code,
            f"{v.visit_code} — {v.definition.name} · " + _("a tube not collected was found"),
        )
        for v in services.visits_missing_a_tube(participant)
    ]
    if request.method == "GET":
        refill(form)
        if form.visit.data is None:  # the visit page's "register the found tube" link
            form.visit.data = request.args.get("visit")
    if not form.tubes.entries:  # a fresh page: one section per tube type of the protocol
        asked = [t for t in protocol.tube_types if t.code == request.args.get("tube")]
        for tube in asked or protocol.tube_types:
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
            participant.code,
            form.visit.data,
            tubes,
            actor=current_user,
            not_collected=_not_collected_entries(form),
            collected_on=form.collected_on.data,
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
    if result.uncollected:
        flash(
            _(
                "Recorded as not collected: %(tubes)s.",
                tubes=", ".join(
                    f"{u.tube_type} ({label(u.reason, 'not_collected')})"
                    for u in result.uncollected
                ),
            ),
            "warning",
        )
    _flash_deviations(result)
    return redirect(
        url_for("samples.visit", code=participant.code, visit_code=result.visit.visit_code), 303
    )


def _flash_deviations(result) -> None:
    """Warn of each tube handled outside the SOP and of a visit outside its window: the
    tubes are registered, and the technician learns it while the tubes are at hand."""
    for specimen in result.specimens:
        found = deviations.listed(specimen.deviations)
        if found:
            flash(
                _(
                    "Tube %(tube)s was handled outside the SOP (%(deviations)s); it is "
                    "registered and flagged.",
                    tube=specimen.tube_type,
                    deviations="; ".join(d.message for d in found),
                ),
                "warning",
            )
    late = services.visit_deviation(result.visit)
    if late is not None:
        flash(
            _(
                "This visit was collected outside its protocol window (%(deviation)s); it is "
                "flagged.",
                deviation=late.message,
            ),
            "warning",
        )


@bp.app_template_filter("deviations")
def deviations_filter(stored: str) -> list[deviations.Deviation]:
    """A specimen's stored deviations (``Specimen.deviations``) in the page's language."""
    return deviations.listed(stored)


def _form_key(service_key: str, index: dict[str, str]) -> str:
    """'SST.frozen_at' from the service is 'tubes.0.frozen_at' on the form."""
    tube, _sep, field = service_key.partition(".")
    return f"tubes.{index[tube]}.{field}" if tube in index and field else service_key


@bp.route("/participants/<code>/visits/<visit_code>")
@requires(Permission.VIEW_SAMPLES)
def visit(code, visit_code):
    registration = services.visit_aliquots(code, visit_code, actor=current_user)
    return render_template(
        "samples/visit.html",
        registration=registration,
        visit_deviation=services.visit_deviation(registration.visit),
    )
