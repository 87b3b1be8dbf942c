"""Pages: assay runs (import, preview with the fitted curve, accept or reject), plate
design, the study export; the results sections of the aliquot and participant pages."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from biobank import dates
from biobank.assays import (
    models,  # noqa: F401  (the tables, for the app and migrations)
    outcomes,
    pictures,
    pipeline,
    plate_readings,
    platemap,
    response,
    services,
)
from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.db import utcnow
from biobank.errors import DomainError, Invalid, NotFound
from biobank.web import add_panel, file_response, kept_form, refuse

bp = Blueprint("assays", __name__, template_folder="templates")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file(name: str) -> tuple[bytes, str]:
    upload = request.files.get(name)
    if upload is None or not upload.filename:
        raise Invalid(_("Choose the file."), fields={name: ""})
    return upload.read(), upload.filename


def _int(name: str) -> int | None:
    text = (request.form.get(name) or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise Invalid(_("Enter a whole number."), fields={name: text})
    return int(text)


def criteria() -> response.Criteria:
    """The response criteria, with the overrides of the settings (RESPONSE_CRITERIA)."""
    return response.load_criteria(**current_app.config.get("RESPONSE_CRITERIA", {}))


# --- runs --------------------------------------------------------------------------------


@bp.route("/assays")
@requires(Permission.IMPORT_ASSAYS)
def runs():
    status = request.args.get("status") or None
    return render_template(
        "assays/runs.html",
        page=services.list_runs(actor=current_user, status=status, limit=200),
        analytes=[a for a in services.analyte_choices() if a.kind == "numeric"],
        status=status,
        form=kept_form(),
    )


@bp.route("/assays/plates", methods=["POST"])
@requires(Permission.IMPORT_ASSAYS)
def import_plate():
    """A reader file and its plate map: stored as a preview to accept or reject."""
    try:
        reader, reader_name = _file("reader_file")
        plate_map, _name = _file("plate_map")
        columns = {
            name: request.form.get(name) or default
            for name, default in (
                ("well_column", "Well"),
                ("sample_column", "Sample"),
                ("value_column", "Value"),
            )
        }
        options = pipeline.Options(
            read=_int("read"),
            reference=_int("reference"),
            model=request.form.get("model") or "4PL",
            weighting=request.form.get("weighting") or "1/y2",
            long_list=request.form.get("long_list") == "1",
            **columns,
        )
        preview = services.preview_plate(
            reader,
            reader_name,
            plate_map,
            request.form.get("analyte", ""),
            options,
            instrument=request.form.get("instrument", ""),
            kit_lot=request.form.get("kit_lot", ""),
            measured_on=dates.read_form(
                request.form, "measured_on", _("Date the plate was read"), with_time=False
            ),
            reassay_reason=request.form.get("reassay_reason", ""),
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("assays.runs"))
    return redirect(url_for("assays.run", code=preview.run.code), 303)


@bp.route("/assays/sheets", methods=["POST"])
@requires(Permission.IMPORT_ASSAYS)
def import_sheet():
    try:
        content, name = _file("result_file")
        preview = services.preview_results(
            content,
            name,
            reassay_reason=request.form.get("reassay_reason", ""),
            actor=current_user,
        )
    except DomainError as err:
        for problem in (err.fields.get("rows") or "").split(" | ")[1:20]:
            flash(problem, "error")
        return refuse(err, url_for("assays.runs"))
    return redirect(url_for("assays.run", code=preview.run.code), 303)


def _sheet_rows(preview: dict) -> list[dict]:
    """A result sheet's rows, each date a date (the page writes it in its language)."""
    return [
        {**row, "measured_on": date.fromisoformat(row["measured_on"])}
        if row.get("measured_on")
        else row
        for row in preview.get("rows", ())
    ]


@bp.route("/assays/runs/<code>")
@requires(Permission.IMPORT_ASSAYS)
def run(code):
    found = services.get_run(code, actor=current_user)
    preview = found.shown
    named = [s["barcode"] for s in preview.get("samples", ())]
    named += [r["barcode"] for r in preview.get("rows", ())]
    plate = found.kind == "plate"
    return render_template(
        "assays/run.html",
        run=found,
        preview=preview,
        origins=services.sample_origins(named, actor=current_user),
        readings=plate_readings.of(preview) if plate else None,
        rows=[] if plate else _sheet_rows(preview),
        form=kept_form(),
    )


@bp.route("/assays/runs/<code>/curve.<fmt>")
@requires(Permission.VIEW_SAMPLES)
def curve(code, fmt):
    if fmt not in ("png", "svg"):
        raise Invalid(_("The picture is a PNG or an SVG."), fields={"format": fmt})
    found = services.get_run(code, actor=current_user)
    if found.kind != "plate":
        raise NotFound(_("Run %(code)s is a result sheet: it has no curve.", code=found.code))
    picture = pictures.run_curve(found.run, fmt, leave_out=found.withheld)
    return file_response(
        picture,
        "image/png" if fmt == "png" else "image/svg+xml",
        f"curve-{found.code}.{fmt}",
        inline=True,
    )


@bp.context_processor
def _remeasures():
    """The run page asks what accepting a run would measure again (a GET: reads only)."""

    def remeasured(run):
        return services.remeasures(getattr(run, "run", run), actor=current_user)

    return {"remeasured": remeasured}


def _choices(form) -> dict[str, str]:
    """The manager's choice per visit: the radios named "choices.<visit key>"."""
    return {
        name.removeprefix("choices."): value
        for name, value in form.items()
        if name.startswith("choices.") and value
    }


@bp.route("/assays/runs/<code>/accept", methods=["POST"])
@requires(Permission.ACCEPT_RUNS)
def accept(code):
    # Only the confirmation form, which lists what the run measures again, confirms: a
    # plain accept of such a run is answered with that list, writing nothing.
    confirm = request.form.get("confirm") == "1"
    try:
        accepted = services.accept_run(
            code,
            confirm=confirm,
            choices=_choices(request.form),
            listed=request.form.getlist("listed") if confirm else None,
            actor=current_user,
        )
    except DomainError as err:
        return refuse(err, url_for("assays.run", code=code))
    flash(_("Run %(code)s accepted: its results are recorded.", code=accepted.code), "success")
    return redirect(url_for("assays.run", code=accepted.code), 303)


@bp.route("/assays/runs/<code>/reject", methods=["POST"])
@requires(Permission.ACCEPT_RUNS)
def reject(code):
    try:
        services.reject_run(code, request.form.get("reason", ""), actor=current_user)
    except DomainError as err:
        return refuse(err, url_for("assays.run", code=code))
    flash(_("Run rejected; it is kept with the reason."), "success")
    return redirect(url_for("assays.run", code=code), 303)


# --- analytes --------------------------------------------------------------------------


@bp.route("/assays/analytes", methods=["GET", "POST"])
@requires(Permission.CONFIGURE)
def analytes():
    """The analytes results may be given for; a new marker is declared here."""
    here = url_for("assays.analytes")
    if request.method == "POST":
        form = request.form
        try:
            declared = services.declare_analyte(
                form.get("code", ""),
                form.get("name", ""),
                form.get("kind", ""),
                form.get("unit", ""),
                values=form.get("values", "").split(","),
                aliases=form.get("aliases", "").split(","),
                actor=current_user,
            )
        except DomainError as err:
            return refuse(err, here)
        flash(_("Analyte %(code)s declared.", code=declared.code), "success")
        return redirect(here, 303)
    return render_template(
        "assays/analytes.html", analytes=services.analyte_choices(), form=kept_form()
    )


# --- plate design ------------------------------------------------------------------------


@bp.route("/assays/plate-design", methods=["GET", "POST"])
@requires(Permission.IMPORT_ASSAYS)
def plate_design():
    """Scanned tubes laid out on a plate; the map downloads and the volumes are recorded."""
    templates = platemap.load_layout_templates()
    if request.method == "POST":
        try:
            entries = services.parse_entries(request.form.get("aliquots", ""), actor=current_user)
            design = services.design_plate(
                request.form.get("template", ""),
                entries,
                _int("volume_per_well_ul") or 100,
                actor=current_user,
            )
        except DomainError as err:
            # A tube that cannot give its volume is named in the list of tubes.
            tube = {"barcode": "aliquots", "volume_ul": "aliquots"}
            return refuse(err, url_for("assays.plate_design"), field_names=tube)
        return file_response(design.workbook, XLSX, f"plate-map-{utcnow():%Y%m%d-%H%M}.xlsx")
    return render_template("assays/plate_design.html", templates=templates, form=kept_form())


# --- export ------------------------------------------------------------------------------


@bp.route("/assays/export.<fmt>")
@requires(Permission.VIEW_SAMPLES)
def export(fmt):
    """One row per participant × visit × analyte, for the statisticians."""
    if fmt == "csv":
        return file_response(
            outcomes.export_csv(criteria(), actor=current_user), "text/csv", "study-results.csv"
        )
    if fmt == "xlsx":
        content = outcomes.export_xlsx(criteria(), created=utcnow(), actor=current_user)
        return file_response(content, XLSX, "study-results.xlsx")
    raise Invalid(_("The export is an xlsx or a CSV file."), fields={"format": fmt})


@bp.route("/participants/<code>/results.png")
@requires(Permission.VIEW_SAMPLES)
def time_course_picture(code):
    course = outcomes.time_course(code, actor=current_user)
    analyte = request.args.get("analyte", "VEGF")
    # One point per visit: the reportable value, never a superseded one beside it.
    shown = outcomes.reportable_rows(course.get(analyte, []))
    picture = pictures.time_course(code, analyte, shown, day_label=_("study day"))
    return file_response(picture, "image/png", f"{code}-{analyte}.png", inline=True)


# --- sections of other pages -------------------------------------------------------------


def _aliquot_panel(aliquot_id: int) -> str:
    rows = outcomes.aliquot_results(aliquot_id)
    return render_template("assays/_aliquot_results.html", rows=rows) if rows else ""


def _participant_panel(participant) -> str:
    if not current_user.may(Permission.VIEW_SAMPLES):
        return ""
    course = outcomes.time_course(participant.code, actor=current_user)
    if not course:
        return ""
    return render_template(
        "assays/_participant_results.html",
        participant=participant,
        course=course,
        responses=outcomes.responses_of(course, criteria()),
    )


def register_panels() -> None:
    add_panel("aliquot", _aliquot_panel)
    add_panel("participant", _participant_panel)
