"""What the bank holds of what an inventory file names, looked up set-wise: a few
queries for 50,000 rows, each sending its values a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from biobank.extensions import db
from biobank.inventory.lines import Line
from biobank.samples import services as samples
from biobank.samples.models import Specimen
from biobank.sites.models import Site
from biobank.sites.services import in_reach
from biobank.storage import services as storage
from biobank.storage.models import Container, ContainerType, StoredPosition
from biobank.study import services as study
from biobank.study.models import Participant, Protocol, Visit

# Values a set-wise lookup sends at once: well under SQLite's 32,766 parameters.
CHUNK = 5_000


def chunks(values: Iterable, size: int = CHUNK) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _in(column, values: Iterable, *select) -> Iterator[Any]:
    """Rows whose ``column`` is one of ``values``, a chunk at a time."""
    for chunk in chunks(sorted(set(values))):
        yield from db.session.execute(sa.select(*select).where(column.in_(chunk)))


@dataclass
class Bank:
    """What the bank holds of what the file names."""

    protocol: Protocol
    sites: dict[str, Site]
    participants: dict[str, Participant]
    visits: dict[tuple[int, str], Visit]
    tubes: set[tuple[int, str]]  # (visit id, tube type) registered
    codes_in_use: set[str]  # legacy codes a scan would take for a tube of the bank
    boxes: dict[str, Container]  # the boxes in the actor's reach
    paths: dict[int, list[Container]]
    taken: set[tuple[int, int, int]]  # (box id, row, col) holding a tube
    racks: dict[str, Container]  # the racks in the actor's reach
    box_types: dict[str, ContainerType]
    codes_used: set[str]  # container barcodes used, among the boxes to create


def look_up(lines: list[Line], actor) -> Bank:
    """Everything the rows name, in a fixed number of set-wise queries."""
    protocol = study.current_protocol()
    sites = {site.code: site for site in db.session.execute(sa.select(Site)).scalars()}
    codes = {line.participant for line in lines if line.participant}
    participants = {p.code: p for (p,) in _in(Participant.code, codes, Participant)}
    visits = {
        (visit.participant_id, visit.visit_code): visit
        for (visit,) in _in(Visit.participant_id, [p.id for p in participants.values()], Visit)
    }
    visit_ids = [visit.id for visit in visits.values()]
    tubes = set(_in(Specimen.visit_id, visit_ids, Specimen.visit_id, Specimen.tube_type))
    tubes = {(visit_id, tube_type) for visit_id, tube_type in tubes}
    legacy = sorted({line.legacy_barcode for line in lines if line.legacy_barcode})
    codes_in_use = set()
    for chunk in chunks(legacy):
        codes_in_use |= samples.codes_in_use(chunk)
    boxes = _containers({line.box for line in lines if line.box}, "box", actor)
    racks = _containers({line.rack for line in lines if line.rack}, "rack", actor)
    box_ids = [box.id for box in boxes.values()]
    taken = {
        (box_id, row, col)
        for box_id, row, col in _in(
            StoredPosition.box_id,
            box_ids,
            StoredPosition.box_id,
            StoredPosition.row,
            StoredPosition.col,
        )
    }
    unknown_boxes = {line.box for line in lines if line.box and line.box not in boxes}
    codes_used = {code for (code,) in _in(Container.barcode, unknown_boxes, Container.barcode)}
    box_types = {
        kind.name: kind
        for kind in db.session.execute(
            sa.select(ContainerType).where(ContainerType.kind == "box")
        ).scalars()
    }
    return Bank(
        protocol=protocol,
        sites=sites,
        participants=participants,
        visits=visits,
        tubes=tubes,
        codes_in_use=codes_in_use,
        boxes=boxes,
        paths=storage.ancestry([*box_ids, *(rack.id for rack in racks.values())]),
        taken=taken,
        racks=racks,
        box_types=box_types,
        codes_used=codes_used,
    )


def _containers(codes: set[str], kind: str, actor) -> dict[str, Container]:
    found = {}
    for chunk in chunks(sorted(codes)):
        query = sa.select(Container).where(Container.barcode.in_(chunk), Container.kind == kind)
        for container in db.session.execute(in_reach(query, Container.site_id, actor)).scalars():
            found[container.barcode] = container
    return found
