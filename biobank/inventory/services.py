"""Importing an existing inventory: a centre's spreadsheet of tubes already in its freezers.

``preview`` reads and checks the file and says what it would create, writing nothing.
``apply`` does the same and, when no row has a problem, writes it all in the caller's
transaction: participants (``study.register_participant``), visits (``study.open_visit``,
which decides their window), specimens with their pre-analytical code and deviations,
aliquots with new barcodes and their old labels' codes, one IMPORTED custody event each
(the file's SHA-256 and row), and their places (``storage.store_many``, which records
STORED). A file is applied once: its SHA-256 is kept (``InventoryImport``).

What the file cannot say is recorded as unknown, not guessed: an inventory spreadsheet
gives the blood draw, centrifugation and freezing times but not the centrifuge's force,
duration and temperature, nor the temperatures before and after it. They are left empty,
the SPREC code carries the "unknown" element (X) for them and the SOP checks that need
them are skipped (see ``UNRECORDED_NOTE``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace

import sqlalchemy as sa
from flask_babel import format_datetime, ngettext
from flask_babel import lazy_gettext as _l

from biobank import uploads
from biobank.auth.models import User
from biobank.auth.roles import Permission
from biobank.custody import services as custody
from biobank.custody.hashing import canonical_json
from biobank.custody.models import GENESIS_HASH, CustodyEvent
from biobank.db import utcnow
from biobank.errors import Conflict, Forbidden, Invalid, NotFound
from biobank.extensions import db
from biobank.inventory import checking
from biobank.inventory.checking import Plan, TubePlan, VisitPlan
from biobank.inventory.lines import Line, Problem
from biobank.inventory.lookup import chunks
from biobank.samples import barcodes, deviations, sprec
from biobank.samples.models import Aliquot, InventoryImport, Specimen, UncollectedTube
from biobank.samples.services import aliquots_in_reach
from biobank.sites.models import Site
from biobank.sites.services import get_site
from biobank.storage import services as storage
from biobank.storage.models import Container, StoredPosition
from biobank.storage.positions import Grid
from biobank.study import services as study
from biobank.study.models import Participant, Visit

# An inventory spreadsheet gives the times of a tube's handling but not the centrifuge's
# force, duration and temperature, nor the temperatures before and after it: they are
# left empty (not recorded), its SPREC code says "unknown" (X) for them, the SOP checks
# that need them are skipped (samples/deviations.py checks what was recorded), and the
# specimen's notes say where it came from.
UNRECORDED_NOTE = (
    "Imported from an inventory spreadsheet (SHA-256 {sha}, row {row}): the centrifugation "
    "(force, duration, temperature) and the temperatures before and after it were not "
    "recorded."
)


# --- the report ----------------------------------------------------------------------------


@dataclass
class Report:
    """What a file holds and would create (or created), and every problem found."""

    filename: str
    sha256: str
    rows: int
    errors: list[Problem]
    warnings: list[Problem]
    ignored_columns: list[str]
    created: dict[str, int]
    applied: InventoryImport | None = None
    plan: Plan = field(default_factory=Plan, repr=False)

    def as_dict(self) -> dict:
        answer = {
            "filename": self.filename,
            "sha256": self.sha256,
            "rows": self.rows,
            "errors": [problem.as_dict() for problem in self.errors],
            "warnings": [problem.as_dict() for problem in self.warnings],
            "ignored_columns": list(self.ignored_columns),
            "created": dict(self.created),
            "applied": self.applied is not None,
        }
        if self.applied is not None:
            answer["import"] = {
                "id": self.applied.id,
                "applied_at": self.applied.applied_at.isoformat(),
            }
        return answer


class ImportRefused(Invalid):
    """The file has problems: nothing was applied. ``report`` lists them all."""

    default_code = "inventory.errors"

    def __init__(self, report: Report) -> None:
        count = len(report.errors)
        first = report.errors[0] if report.errors else None
        where = _l("row %(row)s, %(column)s", row=first.row, column=first.column) if first else ""
        # Worded now, in the request's language: the count decides the plural form.
        super().__init__(
            ngettext(
                "Nothing was imported: %(name)s has %(num)d problem, at %(where)s: %(message)s",
                "Nothing was imported: %(name)s has %(num)d problems, the first at "
                "%(where)s: %(message)s",
                count,
                name=report.filename,
                where=where,
                message=first.message if first else "",
            ),
            fields={"file": report.filename},
        )
        self.report = report


# --- preview and apply ---------------------------------------------------------------------


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def preview(data: bytes, filename: str, *, actor, site_code: str | None = None) -> Report:
    """Read and check an inventory file against the bank: every problem by row and
    column, the columns left out, and what applying it would create. Writes nothing.

    ``site_code`` imports for one centre: its rows only, and the centre of the
    participants the file enrols when it has no site column. A user bound to a centre
    imports for that centre only. Refused (Conflict) for a file applied already.
    """
    scope = _scope(actor, site_code)
    sha = sha256_of(data)
    _refuse_applied(sha)
    checked = checking.check(
        data, filename, actor=actor, scope=scope, limits=uploads.current_limits()
    )
    return Report(
        filename=filename,
        sha256=sha,
        rows=checked.rows,
        errors=checked.problems,
        warnings=checked.warnings,
        ignored_columns=checked.ignored_columns,
        created=checked.plan.counts(),
        plan=checked.plan,
    )


def apply(data: bytes, filename: str, *, actor, site_code: str | None = None) -> Report:
    """Check the file as ``preview`` does and, when no row has a problem, write what it
    creates in the caller's transaction (see the module's doc). Any problem refuses the
    whole file (ImportRefused, with the report) and nothing is written; a file applied
    already is refused (Conflict naming when and by whom)."""
    report = preview(data, filename, actor=actor, site_code=site_code)
    if report.errors:
        raise ImportRefused(report)
    record = _record_import(report, actor)
    _Writer(report, record, actor).write()
    report.applied = record
    return report


def _scope(actor, site_code: str | None) -> Site | None:
    """Who may import, and for which centre: the one given, else the actor's own."""
    if actor is not None and not (actor.may(Permission.REGISTER) and actor.may(Permission.HANDLE)):
        raise Forbidden(_l("Your role does not allow importing an inventory."))
    bound = getattr(actor, "site_id", None)
    if site_code:
        site = get_site(site_code.strip().upper())
        if bound is not None and site.id != bound:
            raise Forbidden(
                _l("You can import your own centre's inventory only."),
                fields={"site": site.code},
            )
        return site
    return db.session.get(Site, bound) if bound is not None else None


def applied_import(sha: str) -> InventoryImport | None:
    """The import of the file with this SHA-256, if it was applied."""
    query = sa.select(InventoryImport).where(InventoryImport.sha256 == sha)
    return db.session.execute(query).scalar()


def _refuse_applied(sha: str) -> None:
    record = applied_import(sha)
    if record is not None:
        raise _applied_already(record)


def _applied_already(record: InventoryImport) -> Conflict:
    return Conflict(
        _l(
            "This file was applied on %(when)s by %(who)s: a file is never applied twice.",
            when=format_datetime(record.applied_at),
            who=applied_by(record),
        ),
        code="inventory.applied",
        fields={"file": record.filename, "import": record.id},
    )


def applied_by(record: InventoryImport) -> str:
    """Who applied an import: an account's name, or the command line's."""
    user = db.session.get(User, record.applied_by_id) if record.applied_by_id else None
    return user.username if user is not None else str(_l("the command line"))


def _record_import(report: Report, actor) -> InventoryImport:
    """The file's record, written first: a second apply of the same file at the same
    moment fails here, on the SHA-256's unique constraint, before anything else."""
    record = InventoryImport(
        sha256=report.sha256,
        filename=report.filename[:255],
        rows=report.rows,
        aliquots=report.created["aliquots"],
        applied_at=utcnow(),
        applied_by_id=getattr(actor, "id", None),
    )
    db.session.add(record)
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:
        raise Conflict(
            _l("This file was applied by someone else at the same moment."),
            code="inventory.applied",
            fields={"file": report.filename},
        ) from err
    return record


# --- writing a checked file ----------------------------------------------------------------


class _Writer:
    """Writes a checked plan through the services, in the order each needs the last.

    The tubes are written a batch of visits at a time: each batch's specimens and aliquots
    are inserted set-wise, get their custody events and their places, and are then let go
    of by the session, so that the memory an import takes does not grow with the file."""

    VISITS_PER_BATCH = 500

    def __init__(self, report: Report, record: InventoryImport, actor) -> None:
        self.report = report
        self.plan = report.plan
        self.record = record
        self.actor = actor
        self.grids: dict[str, Grid] = {}
        # A scan reads a barcode in any case: no new barcode may read as an old label.
        self.avoid = {
            line.legacy_barcode.upper()
            for visit in self.plan.visits
            for tube in visit.tubes
            for line in tube.lines
        }

    def write(self) -> None:
        self._create_boxes()
        opened = self._open_visits(self._enrol())
        for batch in chunks(opened, self.VISITS_PER_BATCH):
            tubes = self._register_tubes(batch)
            aliquots = self._make_aliquots(tubes)
            self._record_imported(aliquots)
            self._store(aliquots)
            for _, aliquot in aliquots:
                db.session.expunge(aliquot)
            for _, specimen in tubes:
                db.session.expunge(specimen)

    def _create_boxes(self) -> None:
        for box in self.plan.boxes:
            storage.create_container(
                "box",
                box.code,
                parent=box.rack,
                type_name=box.box_type,
                barcode=box.code,
                actor=self.actor,
            )

    def _enrol(self) -> dict[str, Participant]:
        """The participants the file names: those it enrols, and those of the bank."""
        people = {}
        for new in self.plan.participants:
            people[new.code] = study.register_participant(
                new.code,
                new.site,
                new.arm,
                new.disease_status,
                new.included_on,
                new.consent_given_on,
                actor=self.actor,
            )
        known = {visit.participant for visit in self.plan.visits} - set(people)
        for participant in _participants(known):
            people[participant.code] = participant
        return people

    def _open_visits(self, people: dict[str, Participant]) -> list[tuple[VisitPlan, Visit]]:
        """The visits through study.open_visits, set-wise, which has the last word on
        their windows; a refusal there is reported on the visit's first row, and nothing
        is written."""
        planned = self.plan.visits
        wanted = [
            study.WantedVisit(people[plan.participant], plan.visit, plan.collected_on)
            for plan in planned
        ]
        try:
            visits = study.open_visits(wanted, actor=self.actor)
        except study.VisitsRefused as refused:
            self.report.errors = [
                Problem(planned[index].first_row, "collected_at", err.message)
                for index, err in refused.refusals.items()
            ]
            raise ImportRefused(self.report) from None
        return list(zip(planned, visits, strict=True))

    def _register_tubes(
        self, visits: list[tuple[VisitPlan, Visit]]
    ) -> list[tuple[TubePlan, Specimen]]:
        """The batch's specimens, inserted set-wise (the ORM's bulk INSERT … RETURNING)."""
        planned = [(tube, visit) for plan, visit in visits for tube in plan.tubes]
        _forget_not_collected((visit.id, tube.tube_type) for tube, visit in planned)
        rows = [self._specimen(visit, tube) for tube, visit in planned]
        # RETURNING gives the rows in no set order: each is found again by its visit and
        # tube type (unique together).
        inserted = {
            (specimen.visit_id, specimen.tube_type): specimen
            for specimen in db.session.scalars(sa.insert(Specimen).returning(Specimen), rows)
        }
        return [(tube, inserted[(visit.id, tube.tube_type)]) for tube, visit in planned]

    def _specimen(self, visit: Visit, tube: TubePlan) -> dict:
        """A specimen's row: what the file gives, its SPREC code, its deviations."""
        protocol = visit.definition.protocol
        kind = study.tube_type(protocol, tube.tube_type)
        code = _sprec_code(tube, kind.container, kind.sample_type)
        row = {
            "visit_id": visit.id,
            "tube_type": tube.tube_type,
            "container": kind.container,
            "sample_type": kind.sample_type,
            "collected_at": tube.collected_at,
            "precentrifugation_temperature": None,
            "spun_at": tube.spun_at,
            "spin_temperature_c": None,
            "spin_force_g": None,
            "spin_minutes": None,
            "spin_braking": True,
            "second_spin_temperature_c": None,
            "second_spin_force_g": None,
            "second_spin_minutes": None,
            "postcentrifugation_temperature": None,
            "frozen_at": tube.frozen_at,
            "storage_temperature_c": checking.STORAGE_TEMPERATURE_C,
            "sprec_code": str(code),
            "sprec_others": canonical_json(code.others),
            "notes": UNRECORDED_NOTE.format(sha=self.report.sha256, row=tube.lines[0].row),
            "created_at": self.record.applied_at,
            "created_by_id": getattr(self.actor, "id", None),
        }
        found = deviations.found(study.sop_limits(protocol, tube.tube_type), SimpleNamespace(**row))
        row["deviations"] = canonical_json(found)
        row["deviates"] = bool(found)
        return row

    def _make_aliquots(self, tubes: list[tuple[TubePlan, Specimen]]) -> list[tuple[Line, Aliquot]]:
        """One aliquot per row, numbered in file order within its tube, each with a new
        barcode and its old label's code, inserted set-wise."""
        count = sum(len(tube.lines) for tube, _ in tubes)
        codes = iter(_new_barcodes(count, avoid=self.avoid))
        lines, rows = [], []
        for tube, specimen in tubes:
            total = len(tube.lines)
            for number, line in enumerate(tube.lines, start=1):
                lines.append(line)
                rows.append(
                    {
                        "barcode": next(codes),
                        "legacy_barcode": line.legacy_barcode,
                        "specimen_id": specimen.id,
                        "sample_type": specimen.sample_type,
                        "series_number": number,
                        "series_total": total,
                        "initial_volume_ul": line.volume_ul,
                        "volume_ul": line.volume_ul,
                        "status": "registered",
                        "freeze_thaw_count": 0,
                        "registered_at": self.record.applied_at,
                        "custody_head": GENESIS_HASH,
                        "custody_count": 0,
                    }
                )
        # Found again by barcode: RETURNING gives the rows in no set order.
        inserted = {
            aliquot.barcode: aliquot
            for aliquot in db.session.scalars(sa.insert(Aliquot).returning(Aliquot), rows)
        }
        self.sprec = {specimen.id: specimen.sprec_code for _, specimen in tubes}
        return [(line, inserted[row["barcode"]]) for line, row in zip(lines, rows, strict=True)]

    def _record_imported(self, aliquots: list[tuple[Line, Aliquot]]) -> None:
        """One IMPORTED event per aliquot: the file's SHA-256 and the row it came from."""
        changes = [
            (
                aliquot,
                {
                    "at": self.record.applied_at,
                    "details": {
                        "sha256": self.report.sha256,
                        "row": line.row,
                        "legacy_barcode": line.legacy_barcode,
                        "specimen": aliquot.specimen_id,
                        "sprec": self.sprec[aliquot.specimen_id],
                        "volume_ul": aliquot.volume_ul,
                        "series": aliquot.series_label,
                    },
                },
            )
            for line, aliquot in aliquots
        ]
        custody.record_many(changes, custody.EventKind.IMPORTED, self.actor)

    def _store(self, aliquots: list[tuple[Line, Aliquot]]) -> None:
        """Each aliquot with a place, through storage: positions and STORED events are
        written together, by storage's own rules."""
        placed = [
            (aliquot, (line.box, self._grid(line.box).label(*line.cell)))
            for line, aliquot in aliquots
            if line.box is not None
        ]
        for chunk in chunks(placed):
            storage.place_many(
                [aliquot for aliquot, _ in chunk], [place for _, place in chunk], actor=self.actor
            )

    def _grid(self, box: str) -> Grid:
        if box not in self.grids:
            container = storage.get_container(box, actor=self.actor, kind="box")
            self.grids[box] = storage.grid_of(container)
        return self.grids[box]


def _participants(codes: Iterable[str]) -> list[Participant]:
    found = []
    for chunk in chunks(sorted(codes)):
        query = sa.select(Participant).where(Participant.code.in_(chunk))
        found.extend(db.session.execute(query).scalars())
    return found


def _sprec_code(tube: TubePlan, container: str, sample_type: str) -> sprec.SprecCode:
    """The tube's SPREC code from what the file says: the centrifugation and the
    temperatures before and after it are unknown (X)."""
    return sprec.derive_fluid_code(
        sprec.FluidPreanalytics(
            sample_type=sample_type,
            container=container,
            collected_at=tube.collected_at,
            first_spin_at=tube.spun_at,
            precentrifugation_temperature="",
            first_spin=None,
            second_spin=None,
            frozen_at=tube.frozen_at,
            postcentrifugation_temperature="",
            storage_temperature_c=checking.STORAGE_TEMPERATURE_C,
        )
    )


def _forget_not_collected(tubes: Iterable[tuple[int, str]]) -> None:
    """A tube recorded as not drawn and found in a freezer after all: its record goes,
    as at registration."""
    by_visit: dict[int, list[str]] = {}
    for visit_id, tube_type in tubes:
        by_visit.setdefault(visit_id, []).append(tube_type)
    for chunk in chunks(sorted(by_visit)):
        recorded = db.session.execute(
            sa.select(
                UncollectedTube.id, UncollectedTube.visit_id, UncollectedTube.tube_type
            ).where(UncollectedTube.visit_id.in_(chunk))
        ).all()
        gone = [row.id for row in recorded if row.tube_type in by_visit[row.visit_id]]
        if gone:
            db.session.execute(sa.delete(UncollectedTube).where(UncollectedTube.id.in_(gone)))


def _random_source(chunk: int = 65_536):
    """``randbelow(n)`` for n up to 256, from the system's cryptographic source read a
    chunk at a time: drawing tens of thousands of barcodes one system call per character
    costs seconds. Uniform: a byte at or above the largest multiple of n is drawn again."""
    buffer = memoryview(b"")
    position = 0

    def randbelow(n: int) -> int:
        nonlocal buffer, position
        limit = 256 - 256 % n
        while True:
            if position == len(buffer):
                buffer, position = memoryview(os.urandom(chunk)), 0
            byte = buffer[position]
            position += 1
            if byte < limit:
                return byte % n

    return randbelow


def _new_barcodes(count: int, *, avoid: set[str]) -> list[str]:
    """``count`` new aliquot barcodes: none a barcode of the bank, none an old label of
    the bank as it is or in lowercase (as samples draws them), none in ``avoid``."""
    codes: set[str] = set()
    randbelow = _random_source()
    for _ in range(8):
        while len(codes) < count:
            code = barcodes.new_aliquot_barcode(randbelow)
            if code not in avoid:
                codes.add(code)
        taken = set()
        for chunk in chunks(sorted(codes)):
            taken.update(
                db.session.execute(
                    sa.select(Aliquot.barcode).where(Aliquot.barcode.in_(chunk))
                ).scalars()
            )
            variants = {variant: code for code in chunk for variant in (code, code.lower())}
            labels = db.session.execute(
                sa.select(Aliquot.legacy_barcode).where(Aliquot.legacy_barcode.in_(variants))
            ).scalars()
            taken.update(variants[label] for label in labels)
        if not taken:
            return sorted(codes)
        codes -= taken
    raise Conflict(_l("Could not draw unused barcodes; try again."))


# --- what an import created ----------------------------------------------------------------


@dataclass(frozen=True)
class ImportedVisit:
    participant: str
    visit: str
    collected_on: object
    aliquots: int


@dataclass(frozen=True)
class ImportedBox:
    barcode: str
    name: str
    aliquots: int


@dataclass
class ImportSummary:
    record: InventoryImport
    applied_by: str
    aliquots: int
    stored: int
    participants: int
    visits: list[ImportedVisit]
    boxes: list[ImportedBox]


def _imported(record: InventoryImport, actor):
    """The aliquots an import created that the actor may see, as a query of their ids:
    the IMPORTED events of its moment that carry its SHA-256."""
    query = (
        sa.select(Aliquot.id)
        .join(CustodyEvent, CustodyEvent.aliquot_id == Aliquot.id)
        .where(
            CustodyEvent.kind == custody.EventKind.IMPORTED.value,
            CustodyEvent.at == record.applied_at,
            CustodyEvent.details.contains(f'"sha256":"{record.sha256}"'),
        )
    )
    return aliquots_in_reach(query, actor)


def import_summary(import_id: int, *, actor) -> ImportSummary:
    """What an applied import created, as far as the actor may see: its visits and
    boxes with their aliquots. Not found for a user who sees none of it."""
    record = db.session.get(InventoryImport, import_id)
    if record is None:
        raise NotFound(_l("No inventory import %(id)s.", id=import_id))
    ids = _imported(record, actor).subquery()
    visits = [
        ImportedVisit(*row)
        for row in db.session.execute(
            sa.select(Participant.code, Visit.visit_code, Visit.collected_on, sa.func.count())
            .select_from(Aliquot)
            .join(Specimen, Specimen.id == Aliquot.specimen_id)
            .join(Visit, Visit.id == Specimen.visit_id)
            .join(Participant, Participant.id == Visit.participant_id)
            .where(Aliquot.id.in_(sa.select(ids.c.id)))
            .group_by(Participant.code, Visit.visit_code, Visit.collected_on)
            .order_by(Participant.code, Visit.collected_on)
        )
    ]
    if not visits:
        raise NotFound(_l("No inventory import %(id)s.", id=import_id))
    boxes = [
        ImportedBox(*row)
        for row in db.session.execute(
            sa.select(Container.barcode, Container.name, sa.func.count())
            .select_from(StoredPosition)
            .join(Container, Container.id == StoredPosition.box_id)
            .where(StoredPosition.aliquot_id.in_(sa.select(ids.c.id)))
            .group_by(Container.barcode, Container.name)
            .order_by(Container.barcode)
        )
    ]
    return ImportSummary(
        record=record,
        applied_by=applied_by(record),
        aliquots=sum(visit.aliquots for visit in visits),
        stored=sum(box.aliquots for box in boxes),
        participants=len({visit.participant for visit in visits}),
        visits=visits,
        boxes=boxes,
    )
