"""What the FHIR answers read: aliquots found by code, participant or identifier, with
where they stand and their custody, and the reportable results of an aliquot.

Every lookup applies the centre rule (``aliquots_in_reach``, ``find_aliquot``): what
lies at another centre is not found, and a search simply leaves it out. Codes are
looked up through ``samples.services.find_aliquot``, so a legacy barcode finds its tube
wherever a new one does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from biobank.assays import outcomes
from biobank.assays.models import Analyte, AssayRun, Result, run_code
from biobank.custody.models import CustodyEvent
from biobank.errors import DomainError, NotFound
from biobank.extensions import db
from biobank.fhir.codes import codes
from biobank.fhir.search import Reference, Token
from biobank.samples import barcodes
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.storage import services as storage
from biobank.storage.models import Container, ContainerType, StoredPosition
from biobank.storage.positions import grid_for
from biobank.study.models import Participant, Visit


@dataclass(frozen=True)
class Place:
    """Where a tube stands: its box, its position in the box, and both in words with the
    box's freezer and shelf."""

    box: str
    position: str
    described: str


@dataclass(frozen=True)
class SpecimenRecord:
    """An aliquot with what its Specimen resource says besides its own columns."""

    aliquot: Aliquot
    place: Place | None
    events: list[CustodyEvent]
    zone: ZoneInfo  # its centre's time zone: times are written as the centre reads them

    @property
    def specimen(self) -> Specimen:
        return self.aliquot.specimen

    @property
    def participant(self) -> Participant:
        return self.aliquot.specimen.visit.participant


@dataclass(frozen=True)
class ObservationRecord:
    """A reportable result of an aliquot, with what its Observation resource needs."""

    result: outcomes.Row
    specimen: SpecimenRecord
    analyte_name: str
    accepted_at: datetime | None


# --- one specimen --------------------------------------------------------------------------


def find_specimen(code: str, *, actor) -> SpecimenRecord:
    """The aliquot a barcode or legacy barcode names, in the actor's reach; NotFound for
    anything else, whatever it is (another centre's tube, a box, a misread code): FHIR
    answers "not found" and says nothing more."""
    aliquot = _aliquot_or_none(code, actor)
    if aliquot is None:
        raise NotFound(f"No Specimen {code!r} here.", code="fhir.not_found")
    return _records([aliquot])[0]


def _aliquot_or_none(code: str, actor) -> Aliquot | None:
    try:
        return samples.find_aliquot(code, actor=actor)
    except DomainError:
        return None


# --- searching -----------------------------------------------------------------------------


def search_specimens(
    *,
    subjects: list[Reference] | None = None,
    identifiers: list[Token] | None = None,
    actor,
) -> list[SpecimenRecord]:
    """The aliquots of any of these participants and with any of these identifiers (both,
    when both are given), in the actor's reach, by participant, visit and series."""
    query = _specimens(actor)
    if subjects is not None:
        participant_codes = [s.id.strip().upper() for s in subjects if s.names("Patient")]
        query = query.where(Participant.code.in_(participant_codes))
    if identifiers is not None:
        query = query.where(Aliquot.id.in_(sorted(_identified(identifiers, actor))))
    return _records(db.session.execute(query).scalars().all())


def _specimens(actor) -> sa.Select:
    query = _with_their_visit(db.select(Aliquot), actor)
    return query.order_by(
        Participant.code,
        Visit.collected_on,
        Specimen.tube_type,
        Aliquot.series_number,
        Aliquot.id,
    )


def _with_their_visit(query: sa.Select, actor) -> sa.Select:
    """``query`` on aliquots in the actor's reach, their specimen, visit and participant
    loaded by the same statement."""
    return samples.aliquots_in_reach(query, actor).options(
        contains_eager(Aliquot.specimen)
        .contains_eager(Specimen.visit)
        .contains_eager(Visit.participant),
        selectinload(Aliquot.custody_events),
    )


def _identified(identifiers: Iterable[Token], actor) -> set[int]:
    """The ids of the aliquots these identifiers name, each in its own system."""
    found = set()
    systems = _identifier_systems()
    for token in identifiers:
        if token.system is not None and token.system not in systems.values():
            continue  # no identifier of this biobank is in that system
        aliquot = _aliquot_or_none(token.value, actor)
        if aliquot is not None and _identifies(aliquot, token, systems):
            found.add(aliquot.id)
    return found


def _identifier_systems() -> dict[str, str]:
    return {name: codes().system(name) for name in ("barcode", "legacy_barcode")}


def _identifies(aliquot: Aliquot, token: Token, systems: dict[str, str]) -> bool:
    """Whether ``token`` is one of the aliquot's identifiers: a code found through the
    scan lookup is its barcode or its old label (as the scan compares them); a system,
    when given, says which."""
    is_barcode = barcodes.normalize(token.value) == aliquot.barcode
    is_legacy = samples.old_label_read(token.value, aliquot) is not None
    if token.system == systems["barcode"]:
        return is_barcode
    if token.system == systems["legacy_barcode"]:
        return is_legacy
    return is_barcode or is_legacy


# --- observations --------------------------------------------------------------------------


def specimen_observations(specimens: list[Reference], *, actor) -> list[ObservationRecord]:
    """The accepted, reportable results of the aliquots named (by barcode or legacy
    barcode), analyte by analyte; an aliquot out of reach or unknown has none."""
    found: dict[int, Aliquot] = {}
    for reference in specimens:
        if not reference.names("Specimen"):
            continue
        aliquot = _aliquot_or_none(reference.id, actor)
        if aliquot is not None:
            found.setdefault(aliquot.id, aliquot)
    records = _records(list(found.values()))
    names = _analyte_names()
    accepted = _acceptance_times(list(found))
    return [
        ObservationRecord(row, record, names.get(row.analyte, row.analyte), accepted.get(row.run))
        for record in records
        for row in outcomes.aliquot_results(record.aliquot.id)
        if row.reportable
    ]


def _analyte_names() -> dict[str, str]:
    return dict(db.session.execute(sa.select(Analyte.code, Analyte.name)).all())


def _acceptance_times(aliquot_ids: list[int]) -> dict[str, datetime | None]:
    """When each run that measured these aliquots was accepted, by run code."""
    if not aliquot_ids:
        return {}
    rows = db.session.execute(
        sa.select(AssayRun.id, AssayRun.decided_at)
        .join(Result, Result.run_id == AssayRun.id)
        .where(Result.aliquot_id.in_(aliquot_ids))
        .distinct()
    )
    return {run_code(run_id): decided_at for run_id, decided_at in rows}


# --- what a Specimen says besides the aliquot's row ----------------------------------------


def _records(aliquots: list[Aliquot]) -> list[SpecimenRecord]:
    ids = [a.id for a in aliquots]
    places = _places(ids)
    return [
        SpecimenRecord(
            aliquot,
            places.get(aliquot.id),
            list(aliquot.custody_events),
            ZoneInfo(aliquot.specimen.visit.participant.site.timezone),
        )
        for aliquot in aliquots
    ]


def _places(aliquot_ids: list[int]) -> dict[int, Place]:
    """Where each of these aliquots stands (its place is kept while it is checked out)."""
    if not aliquot_ids:
        return {}
    described = storage.locations(aliquot_ids)
    rows = db.session.execute(
        sa.select(
            StoredPosition.aliquot_id,
            Container.barcode,
            StoredPosition.row,
            StoredPosition.col,
            ContainerType.rows,
            ContainerType.cols,
        )
        .join(Container, Container.id == StoredPosition.box_id)
        .join(ContainerType, ContainerType.id == Container.type_id)
        .where(StoredPosition.aliquot_id.in_(aliquot_ids))
    )
    return {
        aliquot_id: Place(box, grid_for(rows_, cols).label(row, col), described[aliquot_id])
        for aliquot_id, box, row, col, rows_, cols in rows
    }
