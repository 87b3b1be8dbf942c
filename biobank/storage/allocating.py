"""Proposing positions for many aliquots at once, and storing a confirmed proposal.

The free positions and the aliquots are read in a fixed number of set-based queries,
whatever their number; the pure planner (allocation.py) decides; the technician confirms
or edits; storing goes through services.store, so every rule and custody event applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from biobank.errors import Invalid
from biobank.extensions import db
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.storage import services
from biobank.storage.allocation import Need, Slot, plan_positions
from biobank.storage.models import StoredPosition
from biobank.study.models import Participant, Visit, VisitDefinition


@dataclass(frozen=True)
class Proposal:
    barcode: str
    box: str
    position: str
    location: str
    sample_type: str = ""
    series: str = ""  # the aliquot's number in its series, "2/5"


@dataclass(frozen=True)
class AllocationPlan:
    proposals: list[Proposal]
    unplaced: list[str]
    notes: list[str]


def _free_slots(actor, exclude: set[int]) -> tuple[list[Slot], dict[int, str], dict[int, tuple]]:
    """Every free position of the boxes the actor may use, with each box's freezer and
    order; returns the slots, freezer classes, and box id → (barcode, grid, path)."""
    boxes = services.list_containers(kind="box", actor=actor, limit=1_000_000).items
    paths = services.ancestry(b.id for b in boxes)
    taken: dict[int, set[tuple[int, int]]] = {}
    owners: dict[int, set[str]] = {}
    rows = db.session.execute(
        sa.select(StoredPosition.box_id, StoredPosition.row, StoredPosition.col, Participant.code)
        .join(Aliquot, Aliquot.id == StoredPosition.aliquot_id)
        .join(Specimen, Specimen.id == Aliquot.specimen_id)
        .join(Visit, Visit.id == Specimen.visit_id)
        .join(Participant, Participant.id == Visit.participant_id)
    )
    for box_id, row, col, participant in rows:
        taken.setdefault(box_id, set()).add((row, col))
        owners.setdefault(box_id, set()).add(participant)
    slots, classes, info = [], {}, {}
    ordered = sorted(boxes, key=lambda b: [c.slot for c in paths[b.id]] + [b.id])
    for order, box in enumerate(ordered):
        path = paths[box.id]
        freezer = next((c for c in path if c.kind in ("freezer", "tank")), None)
        if freezer is None or box.free == 0 or box.id in exclude:
            continue
        classes[freezer.id] = freezer.temperature_class
        grid = services.grid_of(path[-1])
        info[box.id] = (box.barcode, grid, path)
        owner = owners.get(box.id, set())
        only = next(iter(owner)) if len(owner) == 1 else None
        used = taken.get(box.id, set())
        slots.extend(
            Slot(box.id, freezer.id, order, index, only)
            for index, cell in enumerate(grid.fill_order())
            if cell not in used
        )
    return slots, classes, info


def _needs(
    aliquot_ids: list[int], actor, *, stored: bool = False
) -> tuple[list[Need], dict[int, tuple[str, str, str]]]:
    """What the aliquots need: registered ones not yet stored, or (``stored``) stored ones
    being moved out of a failing freezer; and each one's (barcode, sample type, number).
    Only the actor's centre's aliquots: another centre's tube in a failing freezer is that
    centre's (or the central biobank's) to move."""
    wanted = (
        StoredPosition.id.is_not(None)
        if stored
        else sa.and_(StoredPosition.id.is_(None), Aliquot.status == "registered")
    )
    rows = db.session.execute(
        samples.aliquots_in_reach(
            sa.select(
                Aliquot.id,
                Aliquot.barcode,
                Aliquot.specimen_id,
                Participant.code,
                VisitDefinition.order,
                Specimen.storage_temperature_c,
                Aliquot.sample_type,
                Aliquot.series_number,
                Aliquot.series_total,
            )
            .join(Specimen, Specimen.id == Aliquot.specimen_id)
            .join(Visit, Visit.id == Specimen.visit_id)
            .join(VisitDefinition, VisitDefinition.id == Visit.visit_definition_id)
            .outerjoin(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
            .where(Aliquot.id.in_(aliquot_ids), wanted),
            actor,
        )
    ).all()
    needs = [
        Need(id_, specimen, participant, order, str(temperature))
        for id_, _, specimen, participant, order, temperature, *_ in rows
    ]
    named = {
        id_: (code, sample_type, f"{number}/{total}")
        for id_, code, *_, sample_type, number, total in rows
    }
    return needs, named


def propose(
    aliquot_ids: list[int], *, actor, evacuating: list[int] | None = None
) -> AllocationPlan:
    """Positions for these aliquots (those not stored yet), by the ISBER rules of the
    planner: each specimen split over two freezers, a participant's tubes together.
    With ``evacuating`` (container ids), the stored aliquots are to leave those containers,
    whose positions are not offered."""
    needs, named = _needs(aliquot_ids, actor, stored=evacuating is not None)
    slots, classes, info = _free_slots(actor, exclude=set(evacuating or ()))
    needed = {n.temperature_class for n in needs}
    usable = [s for s in slots if classes[s.freezer_id] in needed]
    plan = plan_positions(needs, usable, freezer_classes=classes)
    proposals = []
    for placement in plan.placements:
        code, grid, path = info[placement.box_id]
        row, col = grid.fill_order()[placement.position]
        barcode, sample_type, series = named[placement.aliquot_id]
        proposals.append(
            Proposal(
                barcode,
                code,
                grid.label(row, col),
                services.describe(path, row, col),
                sample_type,
                series,
            )
        )
    unplaced = [named[i][0] for i in plan.unplaced]
    return AllocationPlan(proposals, unplaced, list(plan.notes))


def propose_for_visit(participant: str, visit_code: str, *, actor) -> AllocationPlan:
    registration = samples.visit_aliquots(participant, visit_code, actor=actor)
    return propose([a.id for a in registration.aliquots], actor=actor)


def evacuation(barcode: str, *, actor) -> AllocationPlan:
    """A move plan for everything in a failing freezer (or rack, or box) into free space
    elsewhere; the technician carries it out box by box with scan-to-store."""
    container = services.get_container(barcode, actor=actor)
    below = services.subtree_ids(container.id)
    inside = (
        db.session.execute(
            sa.select(StoredPosition.aliquot_id).where(StoredPosition.box_id.in_(below))
        )
        .scalars()
        .all()
    )
    return propose(list(inside), actor=actor, evacuating=below)


def store_all(placements: list[tuple[str, str, str]], *, actor) -> int:
    """Store a confirmed (possibly edited) proposal: (barcode, box, position) each, all or
    nothing."""
    if not placements:
        raise Invalid(_l("Nothing to store."), fields={"placements": ""})
    return services.store_many(placements, actor=actor)
