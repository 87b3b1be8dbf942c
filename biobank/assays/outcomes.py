"""What the results say: an aliquot's results, a participant's time course per analyte,
the biological response computed from them (never entered), and the study export for
the statisticians (pseudonymised codes only, reproducible)."""

from __future__ import annotations

import functools
import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import openpyxl
import sqlalchemy as sa
from sqlalchemy.orm import aliased

from biobank import tabular
from biobank.assays import reportable, response
from biobank.assays.models import Analyte, AssayRun, Result, run_code
from biobank.extensions import db
from biobank.samples import deviations
from biobank.samples.models import Aliquot, Specimen
from biobank.sites.models import Site
from biobank.sites.services import in_reach
from biobank.study import services as study
from biobank.study.models import Participant, Protocol, Visit, VisitDefinition

VEGF, M_SPIKE, IFE = "VEGF", "M_SPIKE", "IFE"


@dataclass(frozen=True)
class Row:
    """One accepted result with where it comes from, and whether it is the reportable
    value of its visit (biobank/assays/reportable.py) or was superseded."""

    participant: str
    site: str
    arm: str
    disease_status: str
    visit: str
    collected_on: date
    study_day: int
    analyte: str
    value: float | None
    unit: str
    comparator: str | None
    flag: str | None
    limit: float | None
    text: str | None
    detail: str
    barcode: str
    sample_type: str
    sprec_code: str
    run: str
    method: str
    measured_on: date | None
    reportable: bool = True
    superseded_by: str | None = None  # the run whose value superseded this one
    superseded_rule: str = ""  # the rule's reason (reportable.REQUESTED…), "" if reportable
    superseding_request: str = ""  # the re-assay reason of the run that superseded it
    digits: int = 4  # the analyte's significant digits
    dilution: float = 1.0
    # What the sample deviates from (biobank/samples/deviations.py): its tube's handling,
    # its aliquot's thaws, its visit's window; codes in their stable order.
    deviation_codes: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """The value as a reader should see it: "< 15.6", "> 4000", "1234", or why the
        plate gave none."""
        return reportable.shown(self, self.digits)

    @property
    def deviations(self) -> str | None:
        """The deviation codes as the export writes them: "a;b", None when there is none."""
        return ";".join(self.deviation_codes) or None

    @property
    def has_result(self) -> bool:
        """False for a sample the plate gave no result for (wells unread, replicates that
        disagree): it is kept on the pages but gives its visit no value."""
        return self.value is not None or self.flag is not None or self.text is not None

    @property
    def superseded_reason(self) -> str:
        """Why it was superseded, in the reader's language ("" when reportable)."""
        return reportable.reason_words(self.superseded_rule, self.superseding_request)


_SUPERSEDING = aliased(AssayRun)

_ROW = (
    sa.select(
        Participant.code.label("participant"),
        Site.code.label("site"),
        Participant.arm_code.label("arm"),
        Participant.disease_status.label("disease_status"),
        Visit.visit_code.label("visit"),
        Visit.collected_on.label("collected_on"),
        Visit.study_day.label("study_day"),
        Analyte.code.label("analyte"),
        Result.value.label("value"),
        Result.unit.label("unit"),
        Result.comparator.label("comparator"),
        Result.flag.label("flag"),
        Result.limit.label("limit"),
        Result.text.label("text"),
        Result.detail.label("detail"),
        Aliquot.barcode.label("barcode"),
        Aliquot.sample_type.label("sample_type"),
        Specimen.sprec_code.label("sprec_code"),
        AssayRun.id.label("run"),
        Result.method.label("method"),
        Result.measured_on.label("measured_on"),
        Result.reportable.label("reportable"),
        Result.superseded_by_run_id.label("superseded_by"),
        Result.superseded_reason.label("superseded_rule"),
        sa.func.coalesce(_SUPERSEDING.reassay_reason, "").label("superseding_request"),
        Analyte.significant_digits.label("digits"),
        Result.dilution.label("dilution"),
        Specimen.deviations.label("specimen_deviations"),
        Specimen.tube_type.label("tube_type"),
        Aliquot.freeze_thaw_count.label("freeze_thaw_count"),
        Visit.out_of_window.label("out_of_window"),
        VisitDefinition.protocol_id.label("protocol_id"),
    )
    .select_from(Result)
    .join(AssayRun, AssayRun.id == Result.run_id)
    .outerjoin(_SUPERSEDING, _SUPERSEDING.id == Result.superseded_by_run_id)
    .join(Analyte, Analyte.id == Result.analyte_id)
    .join(Aliquot, Aliquot.id == Result.aliquot_id)
    .join(Specimen, Specimen.id == Aliquot.specimen_id)
    .join(Visit, Visit.id == Specimen.visit_id)
    .join(VisitDefinition, VisitDefinition.id == Visit.visit_definition_id)
    .join(Participant, Participant.id == Visit.participant_id)
    .join(Site, Site.id == Participant.site_id)
    .where(AssayRun.status == "accepted")
)


def _rows(query) -> list[Row]:
    rows = []

    @functools.cache
    def limits(protocol_id: int, tube_type: str):
        return study.sop_limits(db.session.get(Protocol, protocol_id), tube_type)

    for values in db.session.execute(query).mappings():
        row = dict(values)
        row["deviation_codes"] = _deviation_codes(row, limits)
        row["run"] = run_code(row["run"])
        if row["superseded_by"] is not None:
            row["superseded_by"] = run_code(row["superseded_by"])
        rows.append(Row(**row))
    return rows


def _deviation_codes(row: dict, limits) -> tuple[str, ...]:
    """The codes of the sample's deviations, taking their columns out of ``row``: its
    tube's handling outside the SOP, its aliquot thawed more often than the SOP allows
    (counted now: the count is not kept per assay), its visit outside its window."""
    found = deviations.parsed(row.pop("specimen_deviations"))
    tube_type, protocol_id = row.pop("tube_type"), row.pop("protocol_id")
    thawed = deviations.freeze_thaw(row.pop("freeze_thaw_count"), limits(protocol_id, tube_type))
    if thawed is not None:
        found.append(thawed)
    if row.pop("out_of_window"):
        found.append({"code": deviations.VISIT_OUT_OF_WINDOW})
    return tuple(deviations.codes(found))


def aliquot_results(aliquot_id: int) -> list[Row]:
    return _rows(_ROW.where(Aliquot.id == aliquot_id).order_by(Analyte.code, Result.id))


def time_course(participant_code: str, *, actor) -> dict[str, list[Row]]:
    """Analyte → the participant's results in visit order, reportable and superseded."""
    participant = study.get_participant(participant_code, actor=actor)
    rows = _rows(
        _ROW.where(Participant.id == participant.id).order_by(
            Analyte.code, Visit.study_day, Result.id
        )
    )
    course: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        course[row.analyte].append(row)
    return dict(course)


def reportable_rows(rows: list[Row]) -> list[Row]:
    """The reportable result of each visit, in visit order: what is plotted, exported and
    used for the responses."""
    return sorted((r for r in rows if r.reportable), key=lambda r: (r.study_day, r.visit))


def per_visit_values(rows: list[Row]) -> list[Row]:
    """The reportable results that give their visit a value, one per visit: serum first
    when a visit has the analyte on two sample types (the responses are serum criteria)."""
    chosen: dict[str, Row] = {}
    for row in sorted(reportable_rows(rows), key=lambda r: r.sample_type != "SER"):
        if row.has_result:
            chosen.setdefault(row.visit, row)
    return sorted(chosen.values(), key=lambda r: r.study_day)


def _measurements(rows: list[Row]) -> list[response.Measurement]:
    return [
        response.Measurement(r.visit, r.study_day, r.value, r.flag, r.limit)
        for r in per_visit_values(rows)
    ]


@dataclass(frozen=True)
class Responses:
    vegf: list[response.Response]
    haematological: list[response.Response]
    criteria: response.Criteria


def responses_of(course: dict[str, list[Row]], criteria: response.Criteria) -> Responses:
    serum_vegf = [r for r in course.get(VEGF, []) if r.sample_type == "SER"]
    fixations = per_visit_values(course.get(IFE, []))
    m_spike = _measurements(course.get(M_SPIKE, []))
    # A visit with an immunofixation but no M-spike still counts (a negative one is a
    # complete response): it enters the series without a value.
    measured = {m.visit for m in m_spike}
    m_spike += [
        response.Measurement(r.visit, r.study_day, None)
        for r in fixations
        if r.visit not in measured
    ]
    m_spike.sort(key=lambda m: m.day)
    return Responses(
        response.vegf_responses(_measurements(serum_vegf), criteria),
        response.haematological_responses(m_spike, {r.visit: r.text for r in fixations}, criteria),
        criteria,
    )


# --- export ------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "participant", "site", "arm", "disease_status", "visit", "collected_on", "study_day",
    "analyte", "value", "unit", "comparator", "flag", "limit", "text", "detail",
    "aliquot", "sample_type", "sprec_code", "deviations", "run", "method", "measured_on",
    "percent_change", "response", "response_rule", "criteria_version",
)  # fmt: skip


MEASUREMENT_COLUMNS = (
    "participant", "site", "visit", "collected_on", "study_day", "analyte", "value",
    "unit", "comparator", "flag", "limit", "text", "detail", "aliquot", "sample_type",
    "deviations", "run", "dilution", "method", "measured_on", "reportable", "superseded_by",
    "superseded_reason",
)  # fmt: skip


def accepted_rows(actor) -> list[Row]:
    """Every accepted result, sorted, for a reproducible file; a centre's user gets that
    centre's only."""
    query = _ROW.order_by(Participant.code, Visit.study_day, Analyte.code, Result.id)
    return _rows(in_reach(query, Participant.site_id, actor))


def courses_of(rows: list[Row]) -> dict[str, dict[str, list[Row]]]:
    by_participant: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_participant[row.participant][row.analyte].append(row)
    return by_participant


def _verdicts(
    course: dict[str, list[Row]], criteria: response.Criteria
) -> dict[int, response.Response]:
    """id of the row a response was computed from → that response."""
    computed = responses_of(course, criteria)
    serum_vegf = [r for r in course.get(VEGF, []) if r.sample_type == "SER"]
    verdicts = {}
    for rows, responses in (
        (per_visit_values(serum_vegf), computed.vegf),
        (per_visit_values(course.get(M_SPIKE, [])), computed.haematological),
    ):
        at_visit = {r.visit: r for r in responses}
        for row in rows:
            if row.visit in at_visit:
                verdicts[id(row)] = at_visit[row.visit]
    return verdicts


def export_rows(criteria: response.Criteria, *, actor=None) -> list[list]:
    """One row per participant × visit × analyte (× sample type): its reportable result,
    with the response computed from it; values to the analyte's significant digits."""
    table = []
    courses = courses_of(accepted_rows(actor))
    for participant in sorted(courses):
        course = courses[participant]
        verdicts = _verdicts(course, criteria)
        for analyte in sorted(course):
            for row in reportable_rows(course[analyte]):
                table.append(_exported(row, verdicts.get(id(row)), criteria))
    return table


def _exported(row: Row, verdict: response.Response | None, criteria: response.Criteria) -> list:
    value, limit = (reportable.significant(v, row.digits) for v in (row.value, row.limit))
    change = verdict.percent_change if verdict else None
    return [
        row.participant, row.site, row.arm, row.disease_status, row.visit,
        row.collected_on.isoformat(), row.study_day, row.analyte, value, row.unit,
        row.comparator, row.flag, limit, row.text, row.detail, row.barcode,
        row.sample_type, row.sprec_code, row.deviations, row.run, row.method,
        row.measured_on.isoformat() if row.measured_on else None,
        round(change, 2) if change is not None else None,
        verdict.category if verdict else None,
        verdict.rule if verdict else None,
        criteria.version if verdict else None,
    ]  # fmt: skip


def measurement_rows(*, actor=None) -> list[list]:
    """Every accepted result, reportable or superseded, with its run and, when superseded,
    the run that superseded it and why."""
    return [_measurement(row) for row in accepted_rows(actor)]


def _measurement(row: Row) -> list:
    return [
        row.participant, row.site, row.visit, row.collected_on.isoformat(),
        row.study_day, row.analyte, reportable.significant(row.value, row.digits), row.unit,
        row.comparator, row.flag, reportable.significant(row.limit, row.digits), row.text,
        row.detail, row.barcode, row.sample_type, row.deviations, row.run, row.dilution,
        row.method,
        row.measured_on.isoformat() if row.measured_on else None,
        "yes" if row.reportable else "no", row.superseded_by,
        row.superseded_reason or None,
    ]  # fmt: skip


def export_csv(criteria: response.Criteria, *, actor=None) -> bytes:
    """The table as CSV. Texts come from laboratories' sheets (methods, comments): each
    one that could start a formula in a spreadsheet is quoted (biobank/tabular.py)."""
    return tabular.csv_bytes(EXPORT_COLUMNS, export_rows(criteria, actor=actor))


FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def export_xlsx(criteria: response.Criteria, *, created: datetime, actor=None) -> bytes:
    """The same table as an xlsx, and a sheet of every measurement (the superseded ones
    too). Only the creation time (in the document's properties) differs between two
    exports of the same database: the zip entries get a fixed date."""
    book = openpyxl.Workbook(write_only=True)
    book.properties.created = book.properties.modified = created.replace(tzinfo=None)
    # Every text is stored as text and quoted when it could start a formula: a comment
    # typed "=HYPERLINK(...)" in a laboratory's sheet must never run in this workbook.
    sheets = (
        ("Results", EXPORT_COLUMNS, export_rows(criteria, actor=actor)),
        ("All measurements", MEASUREMENT_COLUMNS, measurement_rows(actor=actor)),
    )
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(tabular.xlsx_row(sheet, columns))
        for row in rows:
            sheet.append(tabular.xlsx_row(sheet, row))
    about = book.create_sheet("About")
    about.append(tabular.xlsx_row(about, ["criteria_version", criteria.version]))
    for name, source in sorted(criteria.sources.items()):
        about.append(tabular.xlsx_row(about, [name, source]))
    raw = io.BytesIO()
    book.save(raw)
    return _fixed_zip_times(raw.getvalue())


def _fixed_zip_times(data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()
