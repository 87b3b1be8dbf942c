"""What the results say: an aliquot's results, a participant's time course per analyte,
the biological response computed from them (never entered), and the study export for
the statisticians (pseudonymised codes only, reproducible)."""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import openpyxl
import sqlalchemy as sa

from biobank import tabular
from biobank.assays import response
from biobank.assays.models import Analyte, AssayRun, Result
from biobank.extensions import db
from biobank.samples.models import Aliquot, Specimen
from biobank.sites.models import Site
from biobank.sites.services import in_reach
from biobank.study import services as study
from biobank.study.models import Participant, Visit

VEGF, M_SPIKE, IFE = "VEGF", "M_SPIKE", "IFE"


@dataclass(frozen=True)
class Row:
    """One accepted result with where it comes from."""

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

    @property
    def shown(self) -> str:
        """The value as a reader should see it: "< 15.6", "> 4000 (re-run diluted)", "1234"."""
        if self.flag == "<LLOQ":
            return f"< {self.limit:g}"
        if self.flag == ">ULOQ":
            return f"> {self.limit:g}"
        if self.text is not None:
            return f"{self.text} {self.detail}".strip()
        prefix = f"{self.comparator} " if self.comparator else ""
        # No value: the plate gave no result, and the detail says why.
        return f"{prefix}{self.value:.4g}" if self.value is not None else self.detail


_ROW = (
    sa.select(
        Participant.code,
        Site.code,
        Participant.arm_code,
        Participant.disease_status,
        Visit.visit_code,
        Visit.collected_on,
        Visit.study_day,
        Analyte.code,
        Result.value,
        Result.unit,
        Result.comparator,
        Result.flag,
        Result.limit,
        Result.text,
        Result.detail,
        Aliquot.barcode,
        Aliquot.sample_type,
        Specimen.sprec_code,
        AssayRun.id,
        Result.method,
        Result.measured_on,
    )
    .select_from(Result)
    .join(AssayRun, AssayRun.id == Result.run_id)
    .join(Analyte, Analyte.id == Result.analyte_id)
    .join(Aliquot, Aliquot.id == Result.aliquot_id)
    .join(Specimen, Specimen.id == Aliquot.specimen_id)
    .join(Visit, Visit.id == Specimen.visit_id)
    .join(Participant, Participant.id == Visit.participant_id)
    .join(Site, Site.id == Participant.site_id)
    .where(AssayRun.status == "accepted")
)


def _rows(query) -> list[Row]:
    return [
        Row(*values[:18], f"A{values[18]:05d}", *values[19:])
        for values in db.session.execute(query)
    ]


def aliquot_results(aliquot_id: int) -> list[Row]:
    return _rows(_ROW.where(Aliquot.id == aliquot_id).order_by(Analyte.code, Result.id))


def time_course(participant_code: str, *, actor) -> dict[str, list[Row]]:
    """Analyte → the participant's results in visit order."""
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


def _per_visit(rows: list[Row]) -> list[Row]:
    """The latest accepted result of each visit (a re-run at a higher dilution replaces
    the flagged one). A sample the plate gave no result for (wells unread, replicates
    that disagree) is kept on the pages but never stands for its visit."""
    latest: dict[str, Row] = {}
    for row in rows:
        if row.value is None and row.flag is None and row.text is None:
            continue
        previous = latest.get(row.visit)
        if previous is None or (previous.flag and not row.flag) or row.run > previous.run:
            latest[row.visit] = row
    return sorted(latest.values(), key=lambda r: r.study_day)


def _measurements(rows: list[Row]) -> list[response.Measurement]:
    return [
        response.Measurement(r.visit, r.study_day, r.value, r.flag, r.limit)
        for r in _per_visit(rows)
    ]


@dataclass(frozen=True)
class Responses:
    vegf: list[response.Response]
    haematological: list[response.Response]
    criteria: response.Criteria


def responses_of(course: dict[str, list[Row]], criteria: response.Criteria) -> Responses:
    serum_vegf = [r for r in course.get(VEGF, []) if r.sample_type == "SER"]
    fixations = _per_visit(course.get(IFE, []))
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
    "aliquot", "sample_type", "sprec_code", "run", "method", "measured_on",
    "percent_change", "response", "response_rule", "criteria_version",
)  # fmt: skip


def export_rows(criteria: response.Criteria, *, actor=None) -> list[list]:
    """One row per participant × visit × analyte (the result used for the response),
    sorted, for a reproducible file; a centre's user exports that centre only."""
    query = _ROW.order_by(Participant.code, Visit.study_day, Analyte.code, Result.id)
    rows = _rows(in_reach(query, Participant.site_id, actor))
    by_participant: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_participant[row.participant][row.analyte].append(row)
    table = []
    for participant in sorted(by_participant):
        course = by_participant[participant]
        computed = responses_of(course, criteria)
        verdicts = {
            VEGF: {r.visit: r for r in computed.vegf},
            M_SPIKE: {r.visit: r for r in computed.haematological},
        }
        for analyte in sorted(course):
            for row in _per_visit(course[analyte]):
                verdict = verdicts.get(analyte, {}).get(row.visit)
                table.append(
                    [
                        row.participant, row.site, row.arm, row.disease_status, row.visit,
                        row.collected_on.isoformat(), row.study_day, row.analyte, row.value,
                        row.unit, row.comparator, row.flag, row.limit, row.text, row.detail,
                        row.barcode, row.sample_type, row.sprec_code, row.run, row.method,
                        row.measured_on.isoformat() if row.measured_on else None,
                        verdict.percent_change if verdict else None,
                        verdict.category if verdict else None,
                        verdict.rule if verdict else None,
                        criteria.version if verdict else None,
                    ]
                )  # fmt: skip
    return table


def export_csv(criteria: response.Criteria, *, actor=None) -> bytes:
    """The table as CSV. Texts come from laboratories' sheets (methods, comments): each
    one that could start a formula in a spreadsheet is quoted (biobank/tabular.py)."""
    return tabular.csv_bytes(EXPORT_COLUMNS, export_rows(criteria, actor=actor))


FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def export_xlsx(criteria: response.Criteria, *, created: datetime, actor=None) -> bytes:
    """The same table as an xlsx. Only the creation time (in the document's properties)
    differs between two exports of the same database: the zip entries get a fixed date."""
    book = openpyxl.Workbook(write_only=True)
    book.properties.created = book.properties.modified = created.replace(tzinfo=None)
    sheet = book.create_sheet("Results")
    # Every text is stored as text and quoted when it could start a formula: a comment
    # typed "=HYPERLINK(...)" in a laboratory's sheet must never run in this workbook.
    sheet.append(tabular.xlsx_row(sheet, EXPORT_COLUMNS))
    for row in export_rows(criteria, actor=actor):
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
