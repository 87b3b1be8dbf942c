"""JSON shapes of analytes, assay runs and their previews, results and responses."""

from __future__ import annotations

import json

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, post_dump, post_load, pre_dump, validate
from werkzeug.datastructures import FileStorage

from biobank.assays import pipeline
from biobank.assays.curvefit import MODELS, WEIGHTINGS
from biobank.assays.models import ANALYTE_KINDS, RUN_STATUSES
from biobank.schemas import PageArgs

# --- analytes ----------------------------------------------------------------------------


class AnalyteSchema(Schema):
    """An analyte one may import (declared, or a default added on its first import)."""

    code = fields.String()
    name = fields.String()
    kind = fields.String(metadata={"description": "numeric or qualitative"})
    unit = fields.String(metadata={"description": "canonical unit of a numeric analyte"})


class AnalyteDetailSchema(AnalyteSchema):
    values = fields.Function(
        lambda a: json.loads(a.allowed_values),
        metadata={"description": "the values of a qualitative analyte"},
    )
    aliases = fields.Function(
        lambda a: json.loads(a.aliases),
        metadata={"description": "the names laboratories' sheets use for it"},
    )


class NewAnalyteSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=16),
        metadata={"description": "letters, digits and _", "example": "IL6"},
    )
    name = fields.String(load_default="", validate=validate.Length(max=100))
    kind = fields.String(required=True, validate=validate.OneOf(ANALYTE_KINDS))
    unit = fields.String(
        load_default="",
        validate=validate.Length(max=16),
        metadata={"description": "required for a numeric analyte", "example": "pg/mL"},
    )
    values = fields.List(
        fields.String(validate=validate.Length(min=1, max=32)),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={"description": "the allowed values of a qualitative analyte"},
    )
    aliases = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        load_default=list,
        validate=validate.Length(max=100),
    )


# --- imports -----------------------------------------------------------------------------


class File(Upload):
    """A file of a multipart body (a text field of that name, or an empty file part as a
    browser sends when no file was chosen, is refused)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, FileStorage) or not value.filename:
            raise ValidationError("Send a file.")
        return value


def _dry_run():
    return fields.Boolean(
        load_default=False,
        metadata={"description": "check the file and keep nothing (no run is stored)"},
    )


def _reassay_reason():
    return fields.String(
        load_default="",
        validate=validate.Length(max=500),
        metadata={
            "description": "why the run measures again what an earlier run measured (a "
            "diluted repeat, a failed control): a requested re-assay, whose values supersede "
            "the earlier ones",
            "example": "diluted repeat of the >ULOQ samples of A00012",
        },
    )


def _column(default: str):
    return fields.String(
        load_default=default,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "a long list's column header"},
    )


_OPTIONS = (
    "read",
    "reference",
    "model",
    "weighting",
    "long_list",
    "well_column",
    "sample_column",
    "value_column",
)


class PlateUploadSchema(Schema):
    """A reader file and its plate map, with the options of the fit (multipart form)."""

    reader_file = File(
        required=True, metadata={"description": "the plate reader's export (.xlsx, .csv, .txt)"}
    )
    plate_map = File(required=True, metadata={"description": "the plate map workbook (.xlsx)"})
    analyte = fields.String(
        required=True, validate=validate.Length(min=1, max=16), metadata={"example": "VEGF"}
    )
    read = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=10_000),
        metadata={"description": "wavelength (450) or block number of the read; default: guessed"},
    )
    reference = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=10_000),
        metadata={"description": "wavelength or block number of the correction read (540)"},
    )
    model = fields.String(load_default="4PL", validate=validate.OneOf(MODELS))
    weighting = fields.String(load_default="1/y2", validate=validate.OneOf(WEIGHTINGS))
    long_list = fields.Boolean(
        load_default=False,
        metadata={
            "description": "the reader file is a laboratory system's long list (one row per "
            "well) instead of 8 × 12 blocks"
        },
    )
    well_column = _column("Well")
    sample_column = _column("Sample")
    value_column = _column("Value")
    instrument = fields.String(load_default="", validate=validate.Length(max=100))
    kit_lot = fields.String(load_default="", validate=validate.Length(max=100))
    measured_on = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the day the plate was read (YYYY-MM-DD); default: the reader "
            "file's own date (Gen5 Date, Tecan Start Time…). Asked for (422 run.measured_on) "
            "when the file's date cannot tell day from month"
        },
    )
    reassay_reason = _reassay_reason()
    dry_run = _dry_run()

    @post_load
    def make(self, data, **_):
        options = pipeline.Options(**{name: data.pop(name) for name in _OPTIONS})
        return {**data, "options": options}


class SheetUploadSchema(Schema):
    """A laboratory's result sheet, one row per result (multipart form)."""

    file = File(required=True, metadata={"description": "the result sheet (.xlsx or .csv)"})
    reassay_reason = _reassay_reason()
    dry_run = _dry_run()


def _kept(preview) -> dict:
    return {**preview.data, "run": preview.run.code if preview.run is not None else None}


class PlatePreviewSchema(Schema):
    """What the plate gives: the fit, the standards' recovery, the controls, the samples'
    concentrations (in the analyte's unit) and the problems a manager should read."""

    run = fields.String(allow_none=True, metadata={"description": "null for a dry run"})
    analyte = fields.String()
    fit = fields.Dict(
        metadata={
            "description": "model, params, r2, weighting; for a 5PL, b < 0 when g shapes the "
            "low-concentration end (b > 0: the high one), g = 1 when the standards did not "
            "determine the asymmetry and the 4PL was kept"
        }
    )
    reads = fields.Dict(metadata={"description": "the read and correction read used"})
    measured_on = fields.String(
        allow_none=True, metadata={"description": "the day the plate was read, null if unknown"}
    )
    qc = fields.Dict(metadata={"description": "calibrators, passed, acceptable, lloq, uloq, unit"})
    standards = fields.List(
        fields.Dict(), metadata={"description": "name, expected, back_calculated, recovery_pct"}
    )
    controls = fields.List(fields.Dict(), metadata={"description": "name, value, low, high"})
    samples = fields.List(
        fields.Dict(),
        metadata={
            "description": "barcode, wells, dilution, concentration, unit, cv_pct, flag, "
            "limit, status (quantified, <LLOQ, >ULOQ, no result), reason (why a sample has "
            "a limit or no result: reader saturated, a well empty or unread…), known (an "
            "aliquot of the bank). Every sample of the plate map is listed"
        },
    )
    wells = fields.Dict(metadata={"description": "well → content, kind, response, dilution"})
    problems = fields.List(fields.String())

    @pre_dump
    def unwrap(self, preview, **_):
        return _kept(preview)


class SheetPreviewSchema(Schema):
    """The sheet's results, row by row, and the problems found."""

    run = fields.String(allow_none=True, metadata={"description": "null for a dry run"})
    rows = fields.List(
        fields.Dict(),
        metadata={
            "description": "row, barcode, analyte, value, comparator, text, detail, unit, "
            "reported, method, measured_on, known"
        },
    )
    problems = fields.List(fields.String())

    @pre_dump
    def unwrap(self, preview, **_):
        return _kept(preview)


# --- runs --------------------------------------------------------------------------------


class RunArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(RUN_STATUSES))


def _username(user) -> str | None:
    return user.username if user is not None else None


class RunSchema(Schema):
    code = fields.String()
    kind = fields.String(metadata={"description": "plate or sheet"})
    analyte = fields.Function(
        lambda r: r.analyte.code if r.analyte else None,
        allow_none=True,
        metadata={"description": "a plate's analyte (a sheet names one per row)"},
    )
    file_name = fields.String()
    file_sha256 = fields.String()
    instrument = fields.String()
    kit_lot = fields.String()
    status = fields.String(metadata={"description": "preview, accepted or rejected"})
    reason = fields.String(metadata={"description": "why it was rejected"})
    reassay_reason = fields.String(
        metadata={"description": 'why it measures again what was measured; "" if not a re-assay'}
    )
    problems = fields.Integer(metadata={"description": "how many problems the preview lists"})
    created_at = fields.DateTime()
    created_by = fields.Function(lambda r: _username(r.created_by), allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decided_by = fields.Function(lambda r: _username(r.decided_by), allow_none=True)


class RunPageSchema(Schema):
    items = fields.List(fields.Nested(RunSchema))
    total = fields.Integer()


class RunDetailSchema(RunSchema):
    preview = fields.Function(
        lambda r: json.loads(r.preview),
        metadata={"description": "the preview as imported: what acceptance writes"},
    )


class AcceptanceSchema(Schema):
    """The confirmation a run that measures again what was measured needs."""

    confirm = fields.Boolean(
        load_default=False,
        metadata={"description": "accept although the run measures again visits measured"},
    )
    choices = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.String(validate=validate.Length(min=1, max=64)),
        load_default=dict,
        validate=validate.Length(max=10_000),
        metadata={
            "description": "visit key → the run (or run/aliquot) whose value is kept, for "
            "each visit the rule cannot decide",
            "example": {"LIM-001/M2/VEGF/SER": "A00012"},
        },
    )


class RejectionSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


# --- results -----------------------------------------------------------------------------


class ResultRowSchema(Schema):
    """One accepted result with the visit and aliquot it comes from."""

    participant = fields.String()
    site = fields.String()
    arm = fields.String()
    disease_status = fields.String()
    visit = fields.String()
    collected_on = fields.Date()
    study_day = fields.Integer()
    analyte = fields.String()
    value = fields.Float(allow_none=True, metadata={"description": "in the analyte's unit"})
    unit = fields.String()
    comparator = fields.String(allow_none=True, metadata={"description": "< or >"})
    flag = fields.String(allow_none=True, metadata={"description": "<LLOQ or >ULOQ"})
    limit = fields.Float(allow_none=True, metadata={"description": "the limit a flag refers to"})
    text = fields.String(allow_none=True, metadata={"description": "a qualitative result"})
    detail = fields.String()
    shown = fields.String(metadata={"description": 'as a reader sees it: "< 15.6", "1234"'})
    barcode = fields.String(metadata={"description": "the aliquot measured"})
    sample_type = fields.String()
    sprec_code = fields.String()
    run = fields.String()
    method = fields.String()
    measured_on = fields.Date(allow_none=True)
    reportable = fields.Boolean(
        metadata={"description": "the value of its visit the export and the responses use"}
    )
    superseded_by = fields.String(
        allow_none=True, metadata={"description": "the run whose value superseded this one"}
    )
    superseded_rule = fields.String(
        allow_none=True,
        metadata={"description": "requested, dilution, in_range, latest or chosen"},
    )
    superseded_reason = fields.String(
        allow_none=True, metadata={"description": "why it was superseded, in words"}
    )

    @post_dump(pass_original=True)
    def unset_when_reportable(self, data, row, **_):
        if row.reportable:
            data["superseded_rule"] = data["superseded_reason"] = None
        return data


class AliquotResultsSchema(Schema):
    barcode = fields.String()
    items = fields.List(fields.Nested(ResultRowSchema))


class ResponseSchema(Schema):
    visit = fields.String()
    value_used = fields.Float(allow_none=True)
    percent_change = fields.Float(allow_none=True, metadata={"description": "from baseline"})
    category = fields.String()
    rule = fields.String(metadata={"description": "the rule applied, in words"})
    criteria_version = fields.String()


class ResponsesSchema(Schema):
    vegf = fields.List(fields.Nested(ResponseSchema))
    haematological = fields.List(fields.Nested(ResponseSchema))
    criteria_version = fields.Function(lambda r: r.criteria.version)


class ParticipantResultsSchema(Schema):
    analytes = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Nested(ResultRowSchema)),
        metadata={"description": "analyte code → results in visit order"},
    )
    responses = fields.Nested(ResponsesSchema)
