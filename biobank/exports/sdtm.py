"""The trial's data as CDISC SDTM datasets, for the statisticians: LB (the reportable
assay results), BE (what happened to each specimen, from its record and its custody log),
BS (volumes, freeze-thaw cycles, pre-analytical codes) and RELSPEC (which aliquot comes
from which primary tube).

Each dataset is written as a SAS transport file (XPT v5) and as CSV, with a define
document listing the datasets, their variables and the code lists. The terms come from
``sdtm_terms.toml`` (biobank/exports/terms.py); the results are those the assays domain
reports (biobank/assays/outcomes.py), never recomputed. A user bound to a centre exports
that centre's participants only.

The same database and creation time give the same bytes: records are sorted, the zip's
entries dated with a fixed date, the transport files dated with the creation time.
"""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import render_template
from flask_babel import lazy_gettext as _l

from biobank import tabular
from biobank.assays import outcomes, reportable, units
from biobank.custody.models import CustodyEvent
from biobank.errors import Invalid
from biobank.exports import datasets
from biobank.exports.datasets import BE, BS, LB, RELSPEC, Table, iso_local, local_date, study_day
from biobank.exports.terms import EventTerm, Terms, TestTerm, shipped_terms
from biobank.exports.xport import xpt_bytes
from biobank.extensions import db
from biobank.samples.models import Aliquot, Specimen
from biobank.samples.services import aliquots_in_reach
from biobank.sites.models import Site
from biobank.study.models import Participant, Visit, VisitDefinition

NOT_DONE = "NOT DONE"
DEFINE_FILE = "define.html"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# --- what the datasets are made from -------------------------------------------------------


@dataclass(frozen=True)
class Tube:
    """A primary tube (a specimen) with what the datasets say of its participant and
    visit."""

    id: int
    study_code: str
    participant: str
    included_on: date
    timezone: str
    visit_code: str
    visit_name: str
    visit_number: int
    tube_type: str
    sprec_code: str
    registered_at: datetime
    times: dict[str, datetime | None]  # collected_at, received_at, spun_at, frozen_at

    @property
    def usubjid(self) -> str:
        return f"{self.study_code}-{self.participant}"

    @property
    def refid(self) -> str:
        """The primary tube's specimen ID: it has no barcode of the bank's own."""
        return f"{self.participant}-{self.visit_code}-{self.tube_type}"

    @property
    def collected(self) -> str:
        return self.when(self.times["collected_at"])

    @property
    def collection_day(self) -> int:
        return self.day(self.times["collected_at"])

    def when(self, moment: datetime | None) -> str:
        return iso_local(moment, self.timezone)

    def day(self, moment: datetime) -> int:
        return study_day(local_date(moment, self.timezone), self.included_on)

    def sort_key(self) -> tuple:
        return (self.usubjid, self.visit_number, self.visit_code, self.tube_type)


@dataclass(frozen=True)
class AliquotOfTube:
    """An aliquot and the primary tube it was made from."""

    id: int
    barcode: str
    parent_id: int | None
    sample_type: str
    initial_volume_ul: int
    freeze_thaw_count: int
    tube: Tube


@dataclass(frozen=True)
class Custody:
    aliquot_id: int
    kind: str
    at: datetime


def _aliquots_of_tubes(actor) -> list[AliquotOfTube]:
    """Every aliquot the actor may see with its primary tube, tubes in participant and
    schedule order, aliquots in the order they were made."""
    query = (
        sa.select(
            Aliquot.id,
            Aliquot.barcode,
            Aliquot.parent_id,
            Aliquot.sample_type,
            Aliquot.initial_volume_ul,
            Aliquot.freeze_thaw_count,
            Specimen.id.label("specimen_id"),
            Specimen.tube_type,
            Specimen.sprec_code,
            Specimen.created_at.label("registered_at"),
            Specimen.collected_at,
            Specimen.received_at,
            Specimen.spun_at,
            Specimen.frozen_at,
            Visit.visit_code,
            VisitDefinition.name.label("visit_name"),
            VisitDefinition.order.label("visit_order"),
            Participant.code.label("participant"),
            Participant.study_code,
            Participant.included_on,
            Site.timezone,
        )
        .select_from(Aliquot)
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .join(VisitDefinition, VisitDefinition.id == Visit.visit_definition_id)
        .join(Participant, Participant.id == Visit.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .order_by(Aliquot.id)
    )
    tubes: dict[int, Tube] = {}
    found = []
    for row in db.session.execute(aliquots_in_reach(query, actor)).mappings():
        tube = tubes.get(row["specimen_id"])
        if tube is None:
            tube = tubes[row["specimen_id"]] = _tube(row)
        found.append(
            AliquotOfTube(
                row["id"],
                row["barcode"],
                row["parent_id"],
                row["sample_type"],
                row["initial_volume_ul"],
                row["freeze_thaw_count"],
                tube,
            )
        )
    return sorted(found, key=lambda t: (t.tube.sort_key(), t.id))


def _tube(row) -> Tube:
    return Tube(
        id=row["specimen_id"],
        study_code=row["study_code"],
        participant=row["participant"],
        included_on=row["included_on"],
        timezone=row["timezone"],
        visit_code=row["visit_code"],
        visit_name=row["visit_name"],
        # The protocol counts its visits from 0; SDTM's visit numbers start at 1.
        visit_number=row["visit_order"] + 1,
        tube_type=row["tube_type"],
        sprec_code=row["sprec_code"],
        registered_at=row["registered_at"],
        times={name: row[name] for name in ("collected_at", "received_at", "spun_at", "frozen_at")},
    )


def _custody(actor, kinds: Iterable[str]) -> dict[int, list[Custody]]:
    """The custody events of these kinds, per aliquot, in the order of its chain."""
    query = (
        sa.select(CustodyEvent.aliquot_id, CustodyEvent.kind, CustodyEvent.at)
        .join(Aliquot, Aliquot.id == CustodyEvent.aliquot_id)
        .where(CustodyEvent.kind.in_(sorted(kinds)))
        .order_by(CustodyEvent.aliquot_id, CustodyEvent.seq)
    )
    events: dict[int, list[Custody]] = {}
    for aliquot_id, kind, at in db.session.execute(aliquots_in_reach(query, actor)):
        events.setdefault(aliquot_id, []).append(Custody(aliquot_id, kind, at))
    return events


# --- LB --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A result in LB's words."""

    orres: str = ""
    orresu: str = ""
    stresc: str = ""
    stresn: float | None = None
    stresu: str = ""
    stat: str = ""
    reasnd: str = ""


def finding(row: outcomes.Row, term: TestTerm) -> Finding:
    """What LB says of one reportable result: the value as the laboratory gave it, in the
    standard unit, or why there is none. A value outside the limits of quantitation is
    written with its limit ("<15.6") and has no number, never the limit as a value."""
    if not row.has_result:
        return Finding(stat=NOT_DONE, reasnd=row.detail or NOT_DONE.lower())
    if row.text is not None:
        shown = reportable.shown(row, row.digits)
        return Finding(orres=shown, stresc=term.standard_result(row.text))
    standard = _converter(row, term)
    bound = _bound(row)
    if bound is not None:
        sign, limit = bound
        if limit is None:  # a flag without its limit: the flag is all there is to say
            return Finding(orres=row.flag, orresu=row.unit, stresc=row.flag, stresu=term.unit)
        return Finding(
            orres=f"{sign}{reportable.written(limit, row.digits)}",
            orresu=row.unit,
            stresc=f"{sign}{reportable.written(standard(limit), row.digits)}",
            stresu=term.unit,
        )
    value = reportable.significant(standard(row.value), row.digits)
    return Finding(
        orres=reportable.written(row.value, row.digits),
        orresu=row.unit,
        stresc=reportable.written(value, row.digits),
        stresn=value,
        stresu=term.unit,
    )


def _bound(row: outcomes.Row) -> tuple[str, float | None] | None:
    """("<" or ">", the limit) for a value known only to lie beyond a limit."""
    if row.flag is not None:
        return ("<" if row.flag == "<LLOQ" else ">"), row.limit
    if row.comparator is not None:
        return row.comparator, row.value
    return None


def _converter(row: outcomes.Row, term: TestTerm):
    """value → value in the term's standard unit; refused when the units cannot be
    converted (an analyte whose unit changed after the terms were written)."""
    try:
        if units.normalize_unit(row.unit) == units.normalize_unit(term.unit):
            return lambda value: value
        units.convert(1.0, row.unit, term.unit)
    except units.UnitError:
        raise Invalid(
            _l(
                "The results of %(analyte)s are in %(unit)s, which cannot be converted into "
                "the unit of its SDTM term (%(standard)s): an administrator must correct it "
                "in biobank/exports/sdtm_terms.toml.",
                analyte=row.analyte,
                unit=row.unit or "-",
                standard=term.unit or "-",
            ),
            code="sdtm.unit",
            fields={"analyte": row.analyte},
        ) from None
    return lambda value: units.convert(value, row.unit, term.unit)


def _term(terms: Terms, analyte: str) -> TestTerm:
    term = terms.analytes.get(analyte)
    if term is None:
        raise Invalid(
            _l(
                "The analyte %(analyte)s has no SDTM test code: an administrator must add it "
                "to biobank/exports/sdtm_terms.toml before the export can be made.",
                analyte=analyte,
            ),
            code="sdtm.unmapped_analyte",
            fields={"analyte": analyte},
        )
    return term


def lb_records(results: Iterable[outcomes.Row], tubes: dict[str, Tube], terms: Terms) -> list[list]:
    """One record per reportable result, sorted by participant, visit and test."""
    records = []
    for row in results:
        if not row.reportable:
            continue
        tube, term = tubes[row.barcode], _term(terms, row.analyte)
        found = finding(row, term)
        records.append(
            [
                tube.study_code, "LB", tube.usubjid, None, row.barcode, row.run,
                term.testcd, term.test, term.category, found.orres, found.orresu,
                found.stresc, found.stresn, found.stresu, found.stat, found.reasnd,
                terms.specimen_type(row.sample_type), term.method, tube.visit_number,
                tube.visit_name, tube.collected, tube.collection_day,
            ]
        )  # fmt: skip
    names = LB.names
    order = [names.index(n) for n in ("USUBJID", "VISITNUM", "LBTESTCD", "LBSPEC", "LBMETHOD")]
    records.sort(key=lambda r: ([r[i] for i in order], r[names.index("LBREFID")]))
    return _numbered(records, LB)


def _numbered(records: list[list], dataset: datasets.Dataset) -> list[list]:
    """--SEQ: 1, 2, … within each USUBJID (the records are in their final order)."""
    subject, seq = dataset.names.index("USUBJID"), dataset.names.index(f"{dataset.name}SEQ")
    counts: dict[str, int] = {}
    for record in records:
        counts[record[subject]] = counts.get(record[subject], 0) + 1
        record[seq] = counts[record[subject]]
    return records


# --- BE, BS, RELSPEC -------------------------------------------------------------------------


def _by_tube(aliquots: list[AliquotOfTube]) -> list[tuple[Tube, list[AliquotOfTube]]]:
    grouped: dict[int, tuple[Tube, list[AliquotOfTube]]] = {}
    for aliquot in aliquots:
        grouped.setdefault(aliquot.tube.id, (aliquot.tube, []))[1].append(aliquot)
    return list(grouped.values())


def be_records(
    aliquots: list[AliquotOfTube], custody: dict[int, list[Custody]], terms: Terms
) -> list[list]:
    """Each primary tube's steps (drawn, centrifuged, frozen), then each of its aliquots'
    custody events in the order of its chain."""
    records = []
    for tube, of_tube in _by_tube(aliquots):
        for step in terms.specimen_events:
            moment = tube.times[step.source]
            if moment is not None:
                records.append(_event(tube, tube.refid, step, tube.registered_at, moment))
        for aliquot in of_tube:
            for event in custody.get(aliquot.id, ()):
                term = terms.custody_events[event.kind]
                records.append(_event(tube, aliquot.barcode, term, event.at, event.at))
    return _numbered(records, BE)


def _event(tube: Tube, refid: str, term: EventTerm, recorded: datetime, happened: datetime):
    return [
        tube.study_code, "BE", tube.usubjid, None, refid, term.term, term.decod,
        term.category, tube.visit_number, tube.visit_name, tube.when(recorded),
        tube.when(happened), tube.day(happened),
    ]  # fmt: skip


def bs_records(aliquots: list[AliquotOfTube], terms: Terms) -> list[list]:
    """The primary tube's pre-analytical code, then each aliquot's volume and freeze-thaw
    cycles (whichever tests the terms list)."""
    records = []
    for tube, of_tube in _by_tube(aliquots):
        for test in terms.biospecimen_tests:
            if test.source == "sprec_code":
                primary = terms.primary_specimen
                records.append(_finding(tube, tube.refid, primary, test, tube.sprec_code))
        for aliquot in of_tube:
            specimen = terms.specimen_type(aliquot.sample_type)
            for test in terms.biospecimen_tests:
                if test.source == "aliquot_volume":
                    value = aliquot.initial_volume_ul
                elif test.source == "freeze_thaw_count":
                    value = aliquot.freeze_thaw_count
                else:
                    continue
                records.append(_finding(tube, aliquot.barcode, specimen, test, value))
    return _numbered(records, BS)


def _finding(tube: Tube, refid: str, specimen: str, test, value: int | str) -> list:
    number = value if isinstance(value, int) else None
    return [
        tube.study_code, "BS", tube.usubjid, None, refid, test.testcd, test.test, str(value),
        test.unit, str(value), number, test.unit, specimen, tube.visit_number,
        tube.visit_name, tube.collected, tube.collection_day,
    ]  # fmt: skip


def relspec_records(aliquots: list[AliquotOfTube], terms: Terms) -> list[list]:
    """Each primary tube (level 1), then its aliquots, each naming its parent: the tube,
    or the aliquot it was made from."""
    by_id = {a.id: a for a in aliquots}
    levels: dict[int, int] = {}

    def level(aliquot: AliquotOfTube) -> int:
        if aliquot.id not in levels:
            parent = by_id.get(aliquot.parent_id) if aliquot.parent_id else None
            levels[aliquot.id] = 2 if parent is None else level(parent) + 1
        return levels[aliquot.id]

    records = []
    for tube, of_tube in _by_tube(aliquots):
        records.append([tube.study_code, tube.usubjid, tube.refid, terms.primary_specimen, "", 1])
        for aliquot in of_tube:
            parent = by_id.get(aliquot.parent_id) if aliquot.parent_id else None
            records.append(
                [
                    tube.study_code,
                    tube.usubjid,
                    aliquot.barcode,
                    terms.specimen_type(aliquot.sample_type),
                    parent.barcode if parent else tube.refid,
                    level(aliquot),
                ]
            )
    return records


# --- the package -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """The datasets of one export, and their files."""

    tables: tuple[Table, ...]
    terms: Terms
    created: datetime

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.dataset.name == name)

    @property
    def studies(self) -> list[str]:
        return sorted({value for t in self.tables for value in t.column("STUDYID")})

    @functools.cached_property
    def files(self) -> dict[str, bytes]:
        """File name → content: each dataset's .xpt and .csv, and the define document."""
        files = {}
        for table in self.tables:
            stem = table.dataset.file_stem
            files[f"{stem}.xpt"] = xpt_bytes(table, self.created)
            files[f"{stem}.csv"] = csv_bytes(table)
        files[DEFINE_FILE] = self.define().encode("utf-8")
        return files

    def define(self) -> str:
        """The define document: datasets, variables (with their lengths in these files)
        and code lists. In English, as the CDISC metadata it describes."""
        return render_template(
            "exports/define.html",
            package=self,
            codelists=codelists(self.terms, self.tables),
            created=self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def zip_bytes(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in sorted(self.files.items()):
                entry = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, content)
        return out.getvalue()

    def write(self, folder: Path) -> list[Path]:
        """Write every file into ``folder`` (created if need be); returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, content in sorted(self.files.items()):
            path = folder / name
            path.write_bytes(content)
            written.append(path)
        return written


def csv_bytes(table: Table) -> bytes:
    """The dataset as CSV, through tabular.py: a text that could start a formula is
    quoted. A whole number is written without a decimal part, as SAS shows it."""
    rows = ([_plain(value) for value in row] for row in table.rows)
    return tabular.csv_bytes(table.dataset.names, rows)


def _plain(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build(*, actor, created: datetime, terms: Terms | None = None) -> Package:
    """The SDTM export of what ``actor`` may see (their centre's participants for a user
    bound to a centre, every participant otherwise). Refused (Invalid) when a result's
    analyte has no term in the terms file."""
    terms = terms or shipped_terms()
    aliquots = _aliquots_of_tubes(actor)
    tubes = {t.barcode: t.tube for t in aliquots}
    custody = _custody(actor, terms.custody_events)
    results = outcomes.accepted_rows(actor)
    tables = (
        Table.of(LB, lb_records(results, tubes, terms)),
        Table.of(BE, be_records(aliquots, custody, terms)),
        Table.of(BS, bs_records(aliquots, terms)),
        Table.of(RELSPEC, relspec_records(aliquots, terms)),
    )
    return Package(tables, terms, created)


# --- code lists ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codelist:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple]


def codelists(terms: Terms, tables: Iterable[Table]) -> list[Codelist]:
    """The code lists the define document gives: every term of the terms file, and the
    units the data hold."""
    return [
        Codelist(
            "LBTESTCD",
            f"Laboratory tests ({terms.ct_version} where marked CDISC CT)",
            ("LBTESTCD", "LBTEST", "LBCAT", "LBMETHOD", "LBSTRESU", "Origin", "Analyte"),
            [
                (t.testcd, t.test, t.category, t.method, t.unit, _ORIGIN[t.ct], t.analyte)
                for t in sorted(terms.analytes.values(), key=lambda t: (t.testcd, t.method))
            ],
        ),
        Codelist("SPECTYPE", "Specimen types", ("Value", "Meaning"), _specimen_types(terms)),
        Codelist("UNIT", "Units", ("Value",), [(u,) for u in _units(terms, tables)]),
        Codelist("ND", "Completion status", ("Value", "Meaning"), [(NOT_DONE, "no result")]),
        Codelist(
            "BEDECOD",
            "Biospecimen events (sponsor-defined)",
            ("BEDECOD", "BETERM", "BECAT", "Source"),
            _events(terms),
        ),
        Codelist(
            "BSTESTCD",
            "Biospecimen tests",
            ("BSTESTCD", "BSTEST", "Unit", "Source", "Origin"),
            [(t.testcd, t.test, t.unit, t.source, _ORIGIN[t.ct]) for t in terms.biospecimen_tests],
        ),
    ]


_ORIGIN = {True: "CDISC CT", False: "sponsor-defined"}


def _events(terms: Terms) -> list[tuple[str, str, str, str]]:
    steps = [
        (e.decod, e.term, e.category, f"primary tube: {e.source}") for e in terms.specimen_events
    ]
    logged = [
        (e.decod, e.term, e.category, f"custody log: {e.source}")
        for e in terms.custody_events.values()
    ]
    return steps + logged


def _specimen_types(terms: Terms) -> list[tuple[str, str]]:
    derived = sorted(terms.specimen_types.items())
    return [(terms.primary_specimen, "the primary tube as drawn")] + [
        (kind, f"SPREC type of sample {code}") for code, kind in derived
    ]


def _units(terms: Terms, tables: Iterable[Table]) -> list[str]:
    """The units of the terms file and those the results are in."""
    found = {t.unit for t in terms.analytes.values()} | {t.unit for t in terms.biospecimen_tests}
    for table in tables:
        if table.dataset is LB:
            found |= {u for name in ("LBORRESU", "LBSTRESU") for u in table.column(name)}
    return sorted(u for u in found if u)
