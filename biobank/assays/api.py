"""JSON API: analytes, assay runs (import a plate or a result sheet, accept or reject),
results by aliquot and by participant with the computed responses, the study export."""

from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from biobank.assays import outcomes, schemas, services
from biobank.assays.views import XLSX, criteria
from biobank.auth.access import requires
from biobank.auth.roles import Permission
from biobank.db import utcnow
from biobank.samples import services as samples
from biobank.web import file_response


class _MultipartParser(FlaskParser):
    """A multipart body's files and form fields loaded as one schema: flask-smorest
    documents a single request body per operation, so an upload with its options is
    declared once, under ``location="files"``."""

    def load_files(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


blp = Blueprint("assays_api", __name__, description="Analytes, assay runs, results")
blp.ARGUMENTS_PARSER = _MultipartParser()


def _file(description: str, mimetype: str) -> dict:
    return {200: {"description": description, "content": {mimetype: {}}}}


# --- analytes ----------------------------------------------------------------------------


@blp.route("/analytes")
@requires(Permission.SIGNED_IN)
@blp.response(200, schemas.AnalyteSchema(many=True))
def list_analytes():
    """The analytes one may import: those declared and the defaults of analytes.toml."""
    return services.analyte_choices()


@blp.route("/analytes", methods=["POST"])
@requires(Permission.CONFIGURE)
@blp.arguments(schemas.NewAnalyteSchema)
@blp.response(201, schemas.AnalyteDetailSchema)
def declare_analyte(data):
    """Declare a new analyte: a numeric one with its canonical unit, or a qualitative one
    with its allowed values. 409 when the code exists."""
    return services.declare_analyte(
        data["code"],
        data["name"],
        data["kind"],
        data["unit"],
        data["values"],
        data["aliases"],
        actor=current_user,
    )


# --- imports -----------------------------------------------------------------------------


@blp.route("/assay-runs/plates", methods=["POST"])
@requires(Permission.IMPORT_ASSAYS)
@blp.arguments(schemas.PlateUploadSchema, location="files", unknown=RAISE)
@blp.response(201, schemas.PlatePreviewSchema)
def import_plate(form):
    """Import a plate (multipart: ``reader_file``, ``plate_map`` and the fields below): the
    standards are fitted and checked, the samples interpolated. The run is kept as a
    preview for a manager to accept, unless ``dry_run``. 409 ``run.duplicate_file``
    naming the run (``fields.file``) when the reader file was imported before."""
    reader, plate_map = form["reader_file"], form["plate_map"]
    return services.preview_plate(
        reader.read(),
        reader.filename,
        plate_map.read(),
        form["analyte"],
        form["options"],
        instrument=form["instrument"],
        kit_lot=form["kit_lot"],
        measured_on=form["measured_on"],
        reassay_reason=form["reassay_reason"],
        keep=not form["dry_run"],
        actor=current_user,
    )


@blp.route("/assay-runs/sheets", methods=["POST"])
@requires(Permission.IMPORT_ASSAYS)
@blp.arguments(schemas.SheetUploadSchema, location="files", unknown=RAISE)
@blp.response(201, schemas.SheetPreviewSchema)
def import_sheet(form):
    """Import a laboratory's result sheet (multipart: ``file``, .xlsx or .csv, one row per
    result), kept as a preview unless ``dry_run``. A cell that cannot be read refuses the
    sheet: 400 ``run.result_sheet`` naming the rows (``fields.rows``)."""
    upload = form["file"]
    return services.preview_results(
        upload.read(),
        upload.filename,
        reassay_reason=form["reassay_reason"],
        keep=not form["dry_run"],
        actor=current_user,
    )


# --- runs --------------------------------------------------------------------------------


@blp.route("/assay-runs")
@requires(Permission.IMPORT_ASSAYS)
@blp.arguments(schemas.RunArgs, location="query")
@blp.response(200, schemas.RunPageSchema)
def list_runs(args):
    """Assay runs, newest first, optionally of one status (a centre's users: those imported
    there or holding that centre's aliquots)."""
    return services.list_runs(
        actor=current_user, status=args["status"], limit=args["limit"], offset=args["offset"]
    )


@blp.route("/assay-runs/<code>")
@requires(Permission.IMPORT_ASSAYS)
@blp.response(200, schemas.RunDetailSchema)
def get_run(code):
    """A run with its preview (what acceptance writes) and its decision. A centre's user
    sees the runs imported there or holding that centre's aliquots, without the samples of
    other centres' aliquots (``preview.withheld`` counts them); another run is not found."""
    return services.get_run(code, actor=current_user)


@blp.route("/assay-runs/<code>/accept", methods=["POST"])
@requires(Permission.ACCEPT_RUNS)
@blp.arguments(schemas.AcceptanceSchema, unknown=RAISE)
@blp.response(200, schemas.RunDetailSchema)
@blp.alt_response(409, description="run.remeasures: what the run measures again, to confirm")
@blp.alt_response(422, description="run.choice: a visit the rule cannot decide, unchosen")
def accept_run(data, code):
    """Accept a previewed run: its results are written, with who accepted it and when.
    Samples that are not aliquots of the bank are left out. 409 ``run.decided`` when the
    run was already accepted or rejected.

    A run that measures again a visit already measured (the same aliquot re-assayed,
    another aliquot of the visit) writes nothing and answers 409 ``run.remeasures``:
    ``fields.remeasured`` lists each visit (``key``, the earlier run and value, this run's,
    the value the rule keeps and why, or ``choose``). Send the accept again with
    ``{"confirm": true, "choices": {key: run}}``, a choice for each visit the rule cannot
    decide (422 ``run.choice`` naming the visit when one is missing)."""
    accepted = services.accept_run(
        code, confirm=data["confirm"], choices=data["choices"], actor=current_user
    )
    return services.seen(accepted, actor=current_user)


@blp.route("/assay-runs/<code>/reject", methods=["POST"])
@requires(Permission.ACCEPT_RUNS)
@blp.arguments(schemas.RejectionSchema)
@blp.response(200, schemas.RunDetailSchema)
def reject_run(data, code):
    """Reject a previewed run, saying why: it is kept with the reason, no result is
    written."""
    run = services.reject_run(code, data["reason"], actor=current_user)
    return services.seen(run, actor=current_user)


# --- results -----------------------------------------------------------------------------


@blp.route("/aliquots/<barcode>/results")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.AliquotResultsSchema)
def aliquot_results(barcode):
    """The accepted results measured on an aliquot, by analyte."""
    aliquot = samples.find_aliquot(barcode, actor=current_user)
    return {"barcode": aliquot.barcode, "items": outcomes.aliquot_results(aliquot.id)}


@blp.route("/participants/<code>/results")
@requires(Permission.VIEW_SAMPLES)
@blp.response(200, schemas.ParticipantResultsSchema)
def participant_results(code):
    """A participant's accepted results per analyte in visit order, and the responses
    computed from them (serum VEGF, haematological) under the criteria in force."""
    course = outcomes.time_course(code, actor=current_user)
    return {"analytes": course, "responses": outcomes.responses_of(course, criteria())}


@blp.route("/assay-results/export.csv")
@requires(Permission.VIEW_SAMPLES)
@blp.doc(responses=_file("One row per participant × visit × analyte", "text/csv"))
def export_csv():
    """The study export for the statisticians (pseudonymised codes only): one row per
    participant × visit × analyte with the response computed at that visit."""
    return file_response(
        outcomes.export_csv(criteria(), actor=current_user), "text/csv", "study-results.csv"
    )


@blp.route("/assay-results/export.xlsx")
@requires(Permission.VIEW_SAMPLES)
@blp.doc(responses=_file("The export as a workbook, with the criteria", XLSX))
def export_xlsx():
    """The study export as an Excel workbook (a sheet of results, a sheet naming the
    response criteria and their sources)."""
    content = outcomes.export_xlsx(criteria(), created=utcnow(), actor=current_user)
    return file_response(content, XLSX, "study-results.xlsx")
