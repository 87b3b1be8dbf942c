"""Where boxes stand, as sort keys: which freezer holds each box, how full that freezer
is, and the order a technician walks the freezers in (freezer → shelf → rack → box).
For choosing which copy of a sample to take and for sorting pick lists."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from biobank.extensions import db
from biobank.storage.models import Container, ContainerType, StoredPosition
from biobank.storage.services import ancestry

HOLDERS = ("freezer", "tank")


@dataclass(frozen=True)
class Place:
    box_id: int
    site_id: int
    freezer_id: int | None
    fill: float  # 0–1, of the freezer (of the box when it stands in none)
    walk: tuple  # (site, freezer, shelf, rack, box) as (slot, barcode) pairs


def box_places(box_ids: Iterable[int]) -> dict[int, Place]:
    """The place of each box, in three queries whatever the number of boxes."""
    wanted = set(box_ids)
    if not wanted:
        return {}
    paths = ancestry(wanted)
    freezers = {
        box: next((c.id for c in path if c.kind in HOLDERS), None) for box, path in paths.items()
    }
    fill = _fill_of({f for f in freezers.values() if f is not None})
    places = {}
    for box, path in paths.items():
        holder = freezers[box]
        walk = tuple((c.slot, c.barcode) for c in path if c.kind != "room")
        places[box] = Place(
            box, path[-1].site_id, holder, fill.get(holder, 0.0), (path[-1].site_id, *walk)
        )
    return places


def _fill_of(freezer_ids: set[int]) -> dict[int, float]:
    """Occupied / capacity of each freezer, counting every box below it at any depth."""
    if not freezer_ids:
        return {}
    tree = (
        sa.select(Container.id.label("top"), Container.id.label("id"))
        .where(Container.id.in_(freezer_ids))
        .cte("below", recursive=True)
    )
    child = sa.orm.aliased(Container)
    tree = tree.union_all(sa.select(tree.c.top, child.id).join(child, child.parent_id == tree.c.id))
    used = (
        sa.select(StoredPosition.box_id, sa.func.count().label("n"))
        .group_by(StoredPosition.box_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(
            tree.c.top,
            sa.func.sum(ContainerType.rows * ContainerType.cols),
            sa.func.sum(sa.func.coalesce(used.c.n, 0)),
        )
        .join(Container, Container.id == tree.c.id)
        .join(ContainerType, ContainerType.id == Container.type_id)
        .outerjoin(used, used.c.box_id == Container.id)
        .where(Container.kind == "box")
        .group_by(tree.c.top)
    )
    return {top: (taken or 0) / capacity for top, capacity, taken in rows if capacity}
