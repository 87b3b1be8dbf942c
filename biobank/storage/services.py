"""Freezer inventory: containers, positions, storing, moving, checking out and returning.

Every change to where an aliquot is writes its custody event (STORED, MOVED, CHECKED_OUT,
RETURNED) in the same transaction. One aliquot per position and one position per aliquot
are unique constraints of stored_position: two technicians storing into the same place at
the same moment cannot both succeed, whatever the timing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.attributes import set_committed_value

from biobank.custody import services as custody
from biobank.custody.models import CustodyEvent
from biobank.custody.services import EventKind
from biobank.db import Page
from biobank.errors import Conflict, Forbidden, Invalid, NotFound
from biobank.extensions import db
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.samples.services import AliquotSummary
from biobank.sites import services as sites
from biobank.sites.services import in_reach
from biobank.storage.models import (
    CONTAINER_KINDS,
    PARENT_KINDS,
    TEMPERATURE_CLASSES,
    Container,
    ContainerType,
    StoredPosition,
)
from biobank.storage.positions import Grid, PositionError, grid_for, split_position
from biobank.study.models import Participant, Visit

BARCODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}$")
PREFIXES = {"room": "RM", "freezer": "FR", "tank": "LN", "shelf": "SH", "rack": "RK", "box": "BX"}
# Statuses an aliquot may be stored in; the others are gone from the bank.
STORABLE = {"registered", "in_storage", "checked_out", "received"}
SEPARATOR = " › "
# Rules of higher domains that may refuse taking a tube out of the bank (a reservation
# for another request): registered at start-up, so that storage imports nothing above it.
# Each is called with the aliquot and the purpose of the taking-out (None, or the
# distribution's reference) and raises a DomainError to refuse.
_TAKE_OUT_GUARDS: list[Callable[[Aliquot, object], None]] = []
# What holds reserved tubes (distribution's requests), for the box map: aliquot ids →
# {aliquot id: the holder's reference}. Registered at start-up, like the guards.
_RESERVATIONS: list[Callable[[list[int]], dict[int, str]]] = []


# --- container types and containers ------------------------------------------------------


def create_container_type(
    name: str, kind: str, *, rows=None, cols=None, description="", actor
) -> ContainerType:
    """Declare a model of container (a new box model needs no code)."""
    name = (name or "").strip()
    if not name:
        raise Invalid(_l("A name is required."), fields={"name": ""})
    if kind not in CONTAINER_KINDS:
        raise Invalid(_l("Unknown kind %(k)s.", k=kind), fields={"kind": kind})
    if kind == "box":
        try:
            grid_for(rows or 0, cols or 0)
        except PositionError as err:
            raise Invalid(str(err), fields={"rows": str(rows), "cols": str(cols)}) from err
    elif rows or cols:
        raise Invalid(_l("Only boxes have a grid of positions."), fields={"rows": str(rows)})
    if db.session.execute(db.select(ContainerType.id).where(ContainerType.name == name)).first():
        raise Conflict(_l("Container type %(n)s already exists.", n=name), fields={"name": name})
    kind_row = ContainerType(
        name=name,
        kind=kind,
        rows=rows if kind == "box" else None,
        cols=cols if kind == "box" else None,
        description=description,
    )
    db.session.add(kind_row)
    db.session.flush()
    return kind_row


def list_container_types() -> list[ContainerType]:
    return (
        db.session.execute(
            db.select(ContainerType).order_by(ContainerType.kind, ContainerType.name)
        )
        .scalars()
        .all()
    )


def _visible(query, actor):
    return in_reach(query, Container.site_id, actor)


def get_container(barcode: str, *, actor, kind: str | None = None) -> Container:
    code = (barcode or "").strip().upper()
    query = _visible(db.select(Container).where(Container.barcode == code), actor)
    container = db.session.execute(query).scalar()
    if container is None or (kind is not None and container.kind != kind):
        what = kind or "container"
        raise NotFound(
            _l("No %(what)s with barcode %(code)s.", what=what, code=code),
            code="container.not_found",
            fields={"barcode": code},
        )
    return container


def _next_barcode(kind: str) -> str:
    prefix = PREFIXES[kind]
    count = db.session.execute(
        sa.select(sa.func.count()).select_from(Container).where(Container.kind == kind)
    ).scalar()
    for n in range(count + 1, count + 1000):
        code = f"{prefix}-{n:04d}"
        if not db.session.execute(db.select(Container.id).where(Container.barcode == code)).first():
            return code
    raise Conflict(_l("Could not find a free barcode; give one."))


def create_container(
    kind: str,
    name: str,
    *,
    parent: str | None = None,
    type_name=None,
    barcode: str | None = None,
    site: str | None = None,
    temperature_class: str | None = None,
    set_point_c: float | None = None,
    slot: int | None = None,
    actor,
) -> Container:
    """Add a room, freezer, tank, shelf, rack or box under ``parent`` (a barcode)."""
    if kind not in CONTAINER_KINDS:
        raise Invalid(
            _l("Unknown kind %(k)s (one of: %(all)s).", k=kind, all=", ".join(CONTAINER_KINDS)),
            fields={"kind": kind},
        )
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Invalid(_l("A name of 1 to 100 characters is required."), fields={"name": ""})
    parent_row = get_container(parent, actor=actor) if parent else None
    allowed = PARENT_KINDS[kind]
    if parent_row is None and allowed:
        raise Invalid(
            _l(
                "A %(kind)s must be placed in a %(parents)s.",
                kind=kind,
                parents=" / ".join(allowed),
            ),
            fields={"parent": ""},
        )
    if parent_row is not None and parent_row.kind not in allowed:
        raise Invalid(
            _l("A %(kind)s cannot go into a %(parent)s.", kind=kind, parent=parent_row.kind),
            fields={"parent": parent_row.barcode},
        )
    if parent_row is not None:
        site_id = parent_row.site_id
    else:
        site_id = sites.get_site(site).id if site else getattr(actor, "site_id", None)
        if site_id is None:
            raise Invalid(_l("Say which site this room belongs to."), fields={"site": ""})
    if actor is not None and actor.site_id is not None and actor.site_id != site_id:
        raise Forbidden(_l("You can set up your own centre's storage only."))
    container_type = None
    if type_name:
        container_type = db.session.execute(
            db.select(ContainerType).where(ContainerType.name == type_name)
        ).scalar()
        if container_type is None or container_type.kind != kind:
            raise Invalid(
                _l("No %(kind)s type named %(t)s.", kind=kind, t=type_name),
                fields={"type": type_name},
            )
    if kind == "box" and container_type is None:
        raise Invalid(_l("A box needs its type (its grid of positions)."), fields={"type": ""})
    if kind in ("freezer", "tank"):
        if temperature_class not in TEMPERATURE_CLASSES:
            raise Invalid(
                _l(
                    "A %(kind)s needs its temperature class (%(all)s).",
                    kind=kind,
                    all=", ".join(TEMPERATURE_CLASSES),
                ),
                fields={"temperature_class": str(temperature_class)},
            )
    elif temperature_class is not None:
        raise Invalid(
            _l("Only freezers and tanks have a temperature class."),
            fields={"temperature_class": temperature_class},
        )
    code = (barcode or "").strip().upper() or _next_barcode(kind)
    if not BARCODE.match(code):
        raise Invalid(
            _l("Container barcodes are 2 to 40 capital letters, digits or dashes."),
            fields={"barcode": code},
        )
    if db.session.execute(db.select(Container.id).where(Container.barcode == code)).first():
        raise Conflict(_l("Barcode %(code)s is already used.", code=code), fields={"barcode": code})
    if slot is None:
        slot = _next_slot(parent_row.id if parent_row else None)
    container = Container(
        barcode=code,
        name=name,
        kind=kind,
        type=container_type,
        parent=parent_row,
        site_id=site_id,
        slot=slot,
        temperature_class=temperature_class,
        set_point_c=set_point_c,
    )
    db.session.add(container)
    db.session.flush()
    container.path = describe(ancestry([container.id])[container.id])
    return container


# --- where things are --------------------------------------------------------------------


def _paths(anchor) -> dict[int, list[Container]]:
    """Walk up the tree from each anchor row (key, container id) in one recursive query;
    returns key → containers from the root down."""
    tree = anchor.cte("tree", recursive=True)
    parent = sa.orm.aliased(Container)
    tree = tree.union_all(
        sa.select(tree.c.key, parent.id, parent.parent_id, tree.c.depth + 1).join(
            parent, parent.id == tree.c.parent_id
        )
    )
    rows = db.session.execute(
        sa.select(tree.c.key, tree.c.depth, Container).join(Container, Container.id == tree.c.id)
    ).all()
    paths: dict[int, list[tuple[int, Container]]] = {}
    for key, depth, container in rows:
        paths.setdefault(key, []).append((depth, container))
    return {
        key: [c for _, c in sorted(path, key=lambda item: -item[0])] for key, path in paths.items()
    }


def ancestry(container_ids: Iterable[int]) -> dict[int, list[Container]]:
    """Each container's path from its root down to itself."""
    ids = list(set(container_ids))
    if not ids:
        return {}
    return _paths(
        sa.select(
            Container.id.label("key"),
            Container.id,
            Container.parent_id,
            sa.literal(0).label("depth"),
        ).where(Container.id.in_(ids))
    )


def grid_of(box: Container) -> Grid:
    return grid_for(box.type.rows, box.type.cols)


def describe(path: list[Container], row: int | None = None, col: int | None = None) -> str:
    """ "Freezer −80 n°1 › Shelf 2 › Rack A › Box 12 (BX-0012) › B04"."""
    parts = [
        c.name if c.kind != "box" else f"{c.name} ({c.barcode})" for c in path if c.kind != "room"
    ]
    if row is not None:
        parts.append(grid_of(path[-1]).label(row, col))
    return SEPARATOR.join(parts)


# Built once: every scan runs it.
_STORED_AT = (
    sa.select(
        StoredPosition.aliquot_id,
        Container.path,
        ContainerType.rows,
        ContainerType.cols,
        StoredPosition.row,
        StoredPosition.col,
    )
    .join(Container, Container.id == StoredPosition.box_id)
    .join(ContainerType, ContainerType.id == Container.type_id)
    .where(StoredPosition.aliquot_id.in_(sa.bindparam("ids", expanding=True)))
)


ROW_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def position_label_sql(row, col, cols):
    """Grid.label() in SQL: the row letter, the column zero-padded to the width of the
    box's column count ("B4" in a 9 × 9 box, "B04" in an 8 × 12)."""
    pad = sa.case((sa.and_(cols >= 10, col < 10), "0"), else_="")
    return sa.func.substr(ROW_LETTERS, row, 1) + pad + sa.cast(col, sa.String)


def location_column(aliquot_id) -> sa.ColumnElement:
    """Where an aliquot is, in words, as a correlated subquery for the scan's own query."""
    return (
        sa.select(
            Container.path
            + SEPARATOR
            + position_label_sql(StoredPosition.row, StoredPosition.col, ContainerType.cols)
        )
        .select_from(StoredPosition)
        .join(Container, Container.id == StoredPosition.box_id)
        .join(ContainerType, ContainerType.id == Container.type_id)
        .where(StoredPosition.aliquot_id == aliquot_id)
        .scalar_subquery()
    )


def locations(aliquot_ids: Iterable[int]) -> dict[int, str]:
    """Where each stored aliquot is, in words: one indexed query on the boxes' paths."""
    rows = db.session.connection().execute(_STORED_AT, {"ids": list(aliquot_ids)})
    return {
        aliquot: f"{path}{SEPARATOR}{grid_for(rows_, cols).label(row, col)}"
        for aliquot, path, rows_, cols, row, col in rows
    }


def temperature_class_of(path: list[Container]) -> str | None:
    for container in reversed(path):
        if container.temperature_class:
            return container.temperature_class
    return None


# --- storing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    aliquot: Aliquot
    box: Container
    position: str
    location: str
    moved_from: str | None
    # The tube already stood exactly there: nothing was written, no custody event.
    unchanged: bool = False


def _stored_position(aliquot_id: int) -> StoredPosition | None:
    return db.session.execute(
        db.select(StoredPosition).where(StoredPosition.aliquot_id == aliquot_id)
    ).scalar()


def _occupant(box_id: int, row: int, col: int) -> str | None:
    query = (
        sa.select(Aliquot.barcode)
        .join(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
        .where(
            StoredPosition.box_id == box_id, StoredPosition.row == row, StoredPosition.col == col
        )
    )
    return db.session.execute(query).scalar()


def _occupant_committed(box_id: int, row: int, col: int) -> str | None:
    """Who holds the place now, read outside this failed transaction."""
    query = (
        sa.select(Aliquot.barcode)
        .join(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
        .where(
            StoredPosition.box_id == box_id, StoredPosition.row == row, StoredPosition.col == col
        )
    )
    with db.engine.connect() as connection:
        return connection.execute(query).scalar()


def next_free(box: Container) -> tuple[int, int] | None:
    """The first free position in the box's fill order, or None when it is full."""
    taken = {
        (row, col)
        for row, col in db.session.execute(
            sa.select(StoredPosition.row, StoredPosition.col).where(StoredPosition.box_id == box.id)
        )
    }
    return next((cell for cell in grid_of(box).fill_order() if cell not in taken), None)


def _storage_class(specimen: Specimen) -> str:
    return str(specimen.storage_temperature_c)


def check_storable(aliquot: Aliquot, path: list[Container]) -> None:
    participant = aliquot.specimen.visit.participant
    if participant.consent_status != "given":
        raise Conflict(
            _l(
                "Biobank consent of %(p)s was withdrawn: %(code)s cannot be stored.",
                p=participant.code,
                code=aliquot.barcode,
            ),
            code="consent.withdrawn",
        )
    if aliquot.status not in STORABLE:
        raise Conflict(
            _l(
                "%(code)s is %(status)s: it cannot be stored.",
                code=aliquot.barcode,
                status=aliquot.status,
            ),
            code="aliquot.not_storable",
        )
    place_class = temperature_class_of(path)
    needed = _storage_class(aliquot.specimen)
    if place_class is None or int(place_class) > int(needed):
        raise Conflict(
            _l(
                "%(code)s must be kept at %(needed)s °C or colder; %(box)s is in a %(place)s °C "
                "freezer.",
                code=aliquot.barcode,
                needed=needed,
                box=path[-1].barcode,
                place=place_class or "?",
            ),
            code="storage.temperature",
        )


def store(
    barcode: str, box_barcode: str, position: str | None = None, *, move: bool = False, actor
) -> Stored:
    """Put an aliquot into a box, at ``position`` or, without one, where it already stands
    in that box or else the next free position.

    A tube already exactly there is left as it is: ``Stored.unchanged``, nothing written, no
    custody event (a second scan of the same tube records nothing). An aliquot stored
    elsewhere is moved only with ``move=True`` (the page asks the technician to confirm).
    Refused: withdrawn consent, an aliquot no longer in the bank, a freezer warmer than the
    sample needs, a position already taken.
    """
    aliquot = samples.find_aliquot(barcode, actor=actor)
    box = get_container(box_barcode, actor=actor, kind="box")
    path = ancestry([box.id])[box.id]
    check_storable(aliquot, path)
    grid = grid_of(box)
    current = _stored_position(aliquot.id)
    if position:
        try:
            row, col = grid.parse(position)
        except PositionError as err:
            raise Invalid(str(err), code="position.invalid", fields={"position": position}) from err
    elif current is not None and current.box_id == box.id:
        row, col = current.row, current.col
    else:
        cell = next_free(box)
        if cell is None:
            raise Conflict(
                _l("Box %(box)s is full.", box=box.barcode),
                code="box.full",
                fields={"box": box.barcode},
            )
        row, col = cell
    label = grid.label(row, col)
    if current is not None and (current.box_id, current.row, current.col) == (box.id, row, col):
        return Stored(aliquot, box, label, describe(path, row, col), None, unchanged=True)
    holder = _occupant(box.id, row, col)
    if holder == aliquot.barcode:
        # Read as elsewhere a moment ago, already there now: another scan just moved it.
        raise _changed_meanwhile(aliquot.barcode, describe(path, row, col))
    if holder is not None:
        raise Conflict(
            _l(
                "Position %(pos)s of box %(box)s holds %(other)s.",
                pos=label,
                box=box.barcode,
                other=holder,
            ),
            code="position.taken",
            fields={"position": label},
        )
    moved_from = None
    if current is not None:
        moved_from = locations([aliquot.id])[aliquot.id]
        if not move:
            raise Conflict(
                _l(
                    "%(code)s is stored at %(where)s. Confirm to move it to %(pos)s of %(box)s.",
                    code=aliquot.barcode,
                    where=moved_from,
                    pos=label,
                    box=box.barcode,
                ),
                code="storage.confirm_move",
                fields={"barcode": aliquot.barcode},
            )
        current.box_id, current.row, current.col = box.id, row, col
    else:
        db.session.add(StoredPosition(aliquot_id=aliquot.id, box_id=box.id, row=row, col=col))
    # A failed flush expires every loaded object: what the messages need is read first.
    aliquot_id, code, box_id, box_code = aliquot.id, aliquot.barcode, box.id, box.barcode
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:
        now_at = _location_committed(aliquot_id)
        if now_at is not None and current is None:
            # The same tube scanned twice at once (or by two people): the other scan stored it.
            raise _changed_meanwhile(code, now_at) from err
        taken_by = _occupant_committed(box_id, row, col) or _l("another tube")
        raise Conflict(
            _l(
                "Position %(pos)s of box %(box)s was just taken by %(other)s.",
                pos=label,
                box=box_code,
                other=taken_by,
            ),
            code="position.taken",
            fields={"position": label},
        ) from err
    where = describe(path, row, col)
    if aliquot.status != "checked_out":
        aliquot.status = "in_storage"
    kind = EventKind.MOVED if moved_from else EventKind.STORED
    try:
        custody.record(aliquot, kind, actor, from_location=moved_from, to_location=where)
    except Conflict as err:
        # Two people moving the same tube at once: the other one's move was recorded.
        now_at = _location_committed(aliquot_id)
        if err.code != "custody.concurrent_change" or now_at is None:
            raise
        raise _changed_meanwhile(code, now_at) from err
    return Stored(aliquot, box, label, where, moved_from)


def _location_committed(aliquot_id: int) -> str | None:
    """Where the aliquot is now, read outside this failed transaction."""
    with db.engine.connect() as connection:
        rows = connection.execute(_STORED_AT, {"ids": [aliquot_id]}).all()
    return next(
        (f"{path}{SEPARATOR}{grid_for(r, c).label(row, col)}" for _, path, r, c, row, col in rows),
        None,
    )


def _changed_meanwhile(code: str, where: str) -> Conflict:
    return Conflict(
        _l(
            "%(code)s was just stored at %(where)s by another scan: nothing more was recorded. "
            "Scan it again if it belongs elsewhere.",
            code=code,
            where=where,
        ),
        code="storage.changed_meanwhile",
        fields={"barcode": code},
    )


@dataclass(frozen=True)
class BoxScan:
    """What one scan on the scan-to-store page of a box did."""

    box: str  # the box the page works on (another one when a box label was scanned)
    target: str | None = None  # a position chosen for the next tube
    stored: Stored | None = None


def scan_into_box(
    code: str,
    box_barcode: str,
    *,
    target: str | None = None,
    pending: str | None = None,
    confirmed: bool = False,
    actor,
) -> BoxScan:
    """One scan on the scan-to-store page of ``box_barcode``: a position (B4) is chosen for
    the next tube, another box's label switches to that box, a tube is stored.

    A tube goes to ``target``, or stays where it is when it already stands in this box
    (``Stored.unchanged``: nothing recorded), or goes to the next free position. A tube stored
    elsewhere is moved only when confirmed: ``confirmed`` (the button), or scanning the
    ``pending`` tube, the one the page asked about, again; any other scan is a new scan and
    the question is dropped. A checked-out tube goes back with its volume left, through its
    return, never by a scan here.
    """
    box = get_container(box_barcode, actor=actor, kind="box")
    raw = (code or "").strip()
    if split_position(raw) is not None:
        try:
            return BoxScan(box.barcode, target=grid_of(box).canonical(raw))
        except PositionError as err:
            raise Invalid(str(err), code="position.invalid", fields={"position": raw}) from err
    try:
        aliquot = samples.find_aliquot(raw, actor=actor)
    except (Invalid, NotFound):
        other = _box_or_none(raw, actor)
        if other is None:
            raise
        return BoxScan(other.barcode)
    if aliquot.status == "checked_out":
        raise _checked_out(aliquot)
    move = confirmed or _same_tube(pending, aliquot)
    return BoxScan(
        box.barcode, stored=store(aliquot.barcode, box.barcode, target, move=move, actor=actor)
    )


def _box_or_none(code: str, actor) -> Container | None:
    try:
        return get_container(code, actor=actor, kind="box")
    except NotFound:
        return None


def _same_tube(pending: str | None, aliquot: Aliquot) -> bool:
    """Whether the tube scanned is the one the page asked about, by either of its codes
    (its barcode, or its old label)."""
    try:
        return bool(pending) and samples.barcode_named(pending) == aliquot.barcode
    except Invalid:
        return False


def _checked_out(aliquot: Aliquot) -> Conflict:
    return Conflict(
        _l(
            "%(code)s is checked out: nothing was recorded. Record its return, with the volume "
            "left, on the Return page.",
            code=aliquot.barcode,
        ),
        code="aliquot.checked_out",
        fields={"barcode": aliquot.barcode},
    )


def store_many(placements: list[tuple[str, str, str | None]], *, actor) -> int:
    """Store many aliquots at once — (barcode, box, position or None for the next free) —
    in a fixed number of queries, all or nothing, with the same rules as store(). Aliquots
    already stored are refused here: moves go one by one, with their confirmation."""
    if not placements:
        return 0
    aliquots = samples.find_aliquots([p[0] for p in placements], actor=actor)
    if len(aliquots) != len(placements):
        raise _listed_twice([p[0] for p in placements])
    return place_many(aliquots, [(box, position) for _, box, position in placements], actor=actor)


def place_many(aliquots: list[Aliquot], places: list[tuple[str, str | None]], *, actor) -> int:
    """``store_many`` for aliquots the caller holds already, each to its (box, position or
    None): for a caller that has just created them (an inventory import), which need not
    be looked up again by barcode. The caller answers for their being in the actor's
    reach; every rule of store() is applied to them."""
    placements = [
        (a.barcode, box, position) for a, (box, position) in zip(aliquots, places, strict=True)
    ]
    codes = {(box or "").strip().upper() for _, box, _ in placements}
    boxes = {
        b.barcode: b
        for b in db.session.execute(
            _visible(
                db.select(Container).where(Container.barcode.in_(codes), Container.kind == "box"),
                actor,
            )
        ).scalars()
    }
    missing = sorted(codes - set(boxes))
    if missing:
        raise NotFound(
            _l("No box with barcode %(code)s.", code=", ".join(missing)),
            code="container.not_found",
            fields={"box": ", ".join(missing)},
        )
    paths = ancestry(b.id for b in boxes.values())
    already = (
        db.session.execute(
            sa.select(StoredPosition.aliquot_id).where(
                StoredPosition.aliquot_id.in_([a.id for a in aliquots])
            )
        )
        .scalars()
        .first()
    )
    if already is not None:
        code = next(a.barcode for a in aliquots if a.id == already)
        raise Conflict(
            _l("%(code)s is already stored; move it on its own.", code=code),
            code="storage.confirm_move",
            fields={"barcode": code},
        )
    taken = {
        (box_id, row, col)
        for box_id, row, col in db.session.execute(
            sa.select(StoredPosition.box_id, StoredPosition.row, StoredPosition.col).where(
                StoredPosition.box_id.in_([b.id for b in boxes.values()])
            )
        )
    }
    rows, events = [], []
    for aliquot, (_, box_code, position) in zip(aliquots, placements, strict=True):
        box = boxes[box_code.strip().upper()]
        path = paths[box.id]
        check_storable(aliquot, path)
        grid = grid_of(box)
        try:
            row, col = grid.parse(position) if position else _first_free(grid, box.id, taken)
        except PositionError as err:
            raise Invalid(
                str(err), code="position.invalid", fields={"position": position or ""}
            ) from err
        if (box.id, row, col) in taken:
            raise Conflict(
                _l(
                    "Position %(pos)s of box %(box)s is taken.",
                    pos=grid.label(row, col),
                    box=box.barcode,
                ),
                code="position.taken",
                fields={"position": grid.label(row, col)},
            )
        taken.add((box.id, row, col))
        rows.append({"aliquot_id": aliquot.id, "box_id": box.id, "row": row, "col": col})
        events.append((aliquot, {"to_location": describe(path, row, col)}))
    try:
        db.session.connection().execute(sa.insert(StoredPosition.__table__), rows)
    except sa.exc.IntegrityError as err:
        raise Conflict(
            _l(
                "Some of these positions were just taken by someone else. Nothing "
                "was stored; propose again."
            ),
            code="position.taken",
        ) from err
    # One UPDATE for all, then the loaded rows told their new status.
    db.session.execute(
        sa.update(Aliquot)
        .where(Aliquot.id.in_([a.id for a in aliquots]))
        .values(status="in_storage")
        .execution_options(synchronize_session=False)
    )
    for aliquot in aliquots:
        set_committed_value(aliquot, "status", "in_storage")
    return custody.record_many(events, EventKind.STORED, actor)


def _listed_twice(raw_codes: list[str]) -> Invalid:
    """The refusal of a list naming a tube twice (by the same code, or by its barcode and
    its old label)."""
    seen: set[str] = set()
    for raw in raw_codes:
        barcode = samples.barcode_named(raw)
        if barcode in seen:
            return Invalid(
                _l("%(code)s is listed twice: store each tube once.", code=barcode),
                code="storage.listed_twice",
                fields={"barcode": raw},
            )
        seen.add(barcode)
    raise AssertionError("no tube is listed twice")  # the caller counted one


def _first_free(grid: Grid, box_id: int, taken: set) -> tuple[int, int]:
    for row, col in grid.fill_order():
        if (box_id, row, col) not in taken:
            return row, col
    raise Conflict(_l("A box is full."), code="box.full")


def add_take_out_guard(guard: Callable[[Aliquot, object], None]) -> None:
    if guard not in _TAKE_OUT_GUARDS:
        _TAKE_OUT_GUARDS.append(guard)


def check_take_out(aliquot: Aliquot, purpose: object = None) -> None:
    """Refuse (DomainError) when a higher domain's rule keeps the aliquot in the bank."""
    for guard in _TAKE_OUT_GUARDS:
        guard(aliquot, purpose)


def check_out(
    barcode: str, reason: str, *, destination: str = "", purpose: object = None, actor
) -> Aliquot:
    """Take an aliquot out for use; its position is kept for its return. A tube reserved
    for a request goes out only for that request (``purpose``)."""
    aliquot = samples.find_aliquot(barcode, actor=actor)
    reason = custody.require_reason(reason, _l("check an aliquot out"))
    if aliquot.status == "checked_out":  # a second scan, or a reload of the form
        raise Conflict(
            _l(
                "%(code)s is already checked out: nothing was recorded. Return it on the Return "
                "page when it comes back.",
                code=aliquot.barcode,
            ),
            code="aliquot.checked_out",
            fields={"barcode": aliquot.barcode},
        )
    if aliquot.status != "in_storage":
        raise Conflict(
            _l(
                "%(code)s is not in storage (it is %(status)s).",
                code=aliquot.barcode,
                status=aliquot.status,
            ),
            code="aliquot.not_in_storage",
        )
    check_take_out(aliquot, purpose)
    where = locations([aliquot.id]).get(aliquot.id)
    aliquot.status = "checked_out"
    custody.record(
        aliquot,
        EventKind.CHECKED_OUT,
        actor,
        from_location=where,
        to_location=destination.strip() or None,
        reason=reason,
    )
    return aliquot


def check_returnable(aliquot: Aliquot) -> None:
    """Refuse (Conflict) to return a tube that is not checked out, saying where it is: a
    second scan or a reload of the return form records nothing."""
    if aliquot.status == "checked_out":
        return
    if aliquot.status == "in_storage":
        raise Conflict(
            _l(
                "%(code)s is already back in storage, at %(where)s: nothing was recorded.",
                code=aliquot.barcode,
                where=locations([aliquot.id]).get(aliquot.id, "?"),
            ),
            code="aliquot.not_checked_out",
            fields={"barcode": aliquot.barcode},
        )
    raise Conflict(
        _l(
            "%(code)s is not checked out (it is %(status)s): there is nothing to return.",
            code=aliquot.barcode,
            status=aliquot.status,
        ),
        code="aliquot.not_checked_out",
        fields={"barcode": aliquot.barcode},
    )


def to_return(barcode: str, *, actor) -> AliquotSummary:
    """The checked-out tube a technician scanned on the return page, with its volume and
    its place; refused (Conflict) when it is not checked out."""
    check_returnable(samples.find_aliquot(barcode, actor=actor))
    return samples.scan_aliquot(barcode, actor=actor)


def return_aliquot(
    barcode: str,
    volume_ul: int,
    *,
    thawed: bool,
    box: str | None = None,
    position: str | None = None,
    actor,
) -> Stored:
    """Put a checked-out aliquot back with what is left of it: at its own position unless
    another is given. A thaw counts one more freeze–thaw cycle."""
    aliquot = samples.find_aliquot(barcode, actor=actor)
    check_returnable(aliquot)
    if not 0 <= volume_ul <= aliquot.volume_ul:
        raise Invalid(
            _l("The volume left must be between 0 and %(n)d µL.", n=aliquot.volume_ul),
            fields={"volume_ul": str(volume_ul)},
        )
    before = aliquot.volume_ul
    aliquot.volume_ul = volume_ul
    aliquot.freeze_thaw_count += 1 if thawed else 0
    aliquot.status = "in_storage"
    current = _stored_position(aliquot.id)
    if box:
        placed = store(barcode, box, position, move=True, actor=actor)
        where = placed.location
    else:
        where = locations([aliquot.id])[aliquot.id]
        placed = Stored(
            aliquot, current.box, grid_of(current.box).label(current.row, current.col), where, None
        )
    custody.record(
        aliquot,
        EventKind.RETURNED,
        actor,
        to_location=where,
        details={
            "volume_ul_before": before,
            "volume_ul": volume_ul,
            "thawed": thawed,
            "freeze_thaw_count": aliquot.freeze_thaw_count,
        },
    )
    return placed


def release_positions(aliquot_ids: Iterable[int]) -> dict[int, str]:
    """Free the positions of tubes that leave the bank (shipped, destroyed); returns where
    each one was, for its custody event."""
    ids = list(aliquot_ids)
    where = locations(ids)
    if ids:
        db.session.execute(sa.delete(StoredPosition).where(StoredPosition.aliquot_id.in_(ids)))
    return where


GONE = ("shipped", "consumed", "destroyed", "lost")


def take_volume(barcode: str, volume_ul: int, purpose: str, *, actor) -> Aliquot:
    """Take ``volume_ul`` from an aliquot for an assay: a tube in storage is checked out
    first; the CONSUMED event says how much was taken and what is left; a tube used up
    is consumed and its position freed."""
    aliquot = samples.find_aliquot(barcode, actor=actor)
    if aliquot.status == "in_storage":
        check_out(aliquot.barcode, purpose, actor=actor)
    elif aliquot.status not in ("checked_out", "registered", "received"):
        raise Conflict(
            _l(
                "%(code)s is %(status)s: nothing can be taken from it.",
                code=aliquot.barcode,
                status=aliquot.status,
            ),
            code="aliquot.gone",
            fields={"barcode": aliquot.barcode},
        )
    if not 0 < volume_ul <= aliquot.volume_ul:
        raise Invalid(
            _l(
                "%(code)s holds %(n)d µL: %(asked)d µL cannot be taken.",
                code=aliquot.barcode,
                n=aliquot.volume_ul,
                asked=volume_ul,
            ),
            fields={"volume_ul": str(volume_ul)},
        )
    aliquot.volume_ul -= volume_ul
    where = None
    if aliquot.volume_ul == 0:
        aliquot.status = "consumed"
        where = release_positions([aliquot.id]).get(aliquot.id)
    custody.record(
        aliquot,
        EventKind.CONSUMED,
        actor,
        from_location=where,
        reason=purpose,
        details={"volume_ul_taken": volume_ul, "volume_ul_left": aliquot.volume_ul},
    )
    return aliquot


def destroy(barcode: str, reason: str, *, actor) -> Aliquot:
    """Record that an aliquot was destroyed (consent withdrawn, damaged tube); its position
    is freed. The reason is required and kept in its custody."""
    aliquot = samples.find_aliquot(barcode, actor=actor)
    reason = custody.require_reason(reason, _l("destroy an aliquot"))
    if aliquot.status in GONE:
        raise Conflict(
            _l(
                "%(code)s is %(status)s: it cannot be destroyed here.",
                code=aliquot.barcode,
                status=aliquot.status,
            ),
            code="aliquot.gone",
        )
    check_take_out(aliquot)
    where = release_positions([aliquot.id]).get(aliquot.id)
    aliquot.status = "destroyed"
    custody.record(aliquot, EventKind.DESTROYED, actor, from_location=where, reason=reason)
    return aliquot


# --- boxes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Well:
    position: str
    row: int
    col: int
    barcode: str | None = None
    status: str | None = None
    participant: str | None = None
    visit: str | None = None
    sample_type: str | None = None
    series_number: int | None = None
    series_total: int | None = None
    reserved_for: str | None = None  # the request holding the tube, if one does
    # Held by a tube of a centre the reader is not bound to: occupied, and nothing more of it
    # is shown (its barcode, participant and visit are that centre's).
    other_centre: bool = False

    @property
    def state(self) -> str:
        """empty, available, checked-out, reserved or other-centre: what the well shows."""
        if self.other_centre:
            return "other-centre"
        if self.barcode is None:
            return "empty"
        if self.status == "checked_out":
            return "checked-out"
        return "reserved" if self.reserved_for else "available"

    @property
    def series(self) -> str | None:
        """The aliquot's number in its series, "2/5"."""
        return f"{self.series_number}/{self.series_total}" if self.barcode else None


@dataclass(frozen=True)
class BoxMap:
    box: Container
    grid: Grid
    location: str
    wells: list[Well]

    @property
    def free(self) -> int:
        return sum(1 for well in self.wells if well.state == "empty")

    @property
    def filled(self) -> list[Well]:
        return [well for well in self.wells if well.barcode is not None]


def add_reservation_lookup(lookup: Callable[[list[int]], dict[int, str]]) -> None:
    """Let a higher domain say which tubes are reserved, and for what, on the box map:
    ``lookup(aliquot_ids)`` returns {aliquot id: the holder's reference}."""
    if lookup not in _RESERVATIONS:
        _RESERVATIONS.append(lookup)


def reserved_for(aliquot_ids: list[int]) -> dict[int, str]:
    """{aliquot id: what holds it} for the reserved ones among ``aliquot_ids``."""
    held: dict[int, str] = {}
    if aliquot_ids:
        for lookup in _RESERVATIONS:
            held.update(lookup(aliquot_ids))
    return held


def box_map(barcode: str, *, actor) -> BoxMap:
    """A box's grid with what each position holds (and what holds each reserved tube), in
    four queries. A position holding another centre's tube (a box of a centre the central
    biobank lent, a tube put there by mistake) shows as taken, and nothing more of it."""
    box = get_container(barcode, actor=actor, kind="box")
    grid = grid_of(box)
    rows = db.session.execute(
        samples.aliquots_in_reach(
            sa.select(
                StoredPosition.row,
                StoredPosition.col,
                Aliquot.id,
                Aliquot.barcode,
                Aliquot.status,
                Participant.code,
                Visit.visit_code,
                Aliquot.sample_type,
                Aliquot.series_number,
                Aliquot.series_total,
            )
            .join(Aliquot, Aliquot.id == StoredPosition.aliquot_id)
            .where(StoredPosition.box_id == box.id),
            actor,
        )
    ).all()
    reserved = reserved_for([row[2] for row in rows])
    held = {(r, c): (*rest, reserved.get(id_)) for r, c, id_, *rest in rows}
    taken = _taken(box.id) if samples.bound_to_a_centre(actor) else set()
    wells = [
        Well(grid.label(r, c), r, c, *held[(r, c)])
        if (r, c) in held
        else Well(grid.label(r, c), r, c, other_centre=(r, c) in taken)
        for r, c in grid.fill_order()
    ]
    return BoxMap(box, grid, describe(ancestry([box.id])[box.id]), wells)


def _taken(box_id: int) -> set[tuple[int, int]]:
    """The positions of a box that hold a tube, whoever's it is."""
    query = sa.select(StoredPosition.row, StoredPosition.col).where(StoredPosition.box_id == box_id)
    return {(row, col) for row, col in db.session.execute(query)}


@dataclass(frozen=True)
class BoxSummary:
    barcode: str
    name: str
    rows: int
    cols: int
    free: int
    type: str | None = None
    id: int | None = None


def list_containers(*, kind: str | None = None, actor, limit: int = 100, offset: int = 0) -> Page:
    """Containers (boxes with their free positions), in one query."""
    occupied = (
        sa.select(StoredPosition.box_id, sa.func.count().label("n"))
        .group_by(StoredPosition.box_id)
        .subquery()
    )
    query = _visible(
        sa.select(
            Container.barcode,
            Container.name,
            ContainerType.rows,
            ContainerType.cols,
            sa.func.coalesce(occupied.c.n, 0),
            ContainerType.name,
            Container.id,
        )
        .outerjoin(ContainerType, ContainerType.id == Container.type_id)
        .outerjoin(occupied, occupied.c.box_id == Container.id),
        actor,
    )
    if kind:
        query = query.where(Container.kind == kind)
    total = db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    rows = db.session.execute(query.order_by(Container.barcode).limit(limit).offset(offset))
    items = [
        BoxSummary(code, name, r or 0, c or 0, (r or 0) * (c or 0) - used, type_name, id_)
        for code, name, r, c, used, type_name, id_ in rows
    ]
    return Page(items, total)


@dataclass(frozen=True)
class FreezerOverview:
    freezer: Container
    boxes: list[tuple[list[Container], BoxSummary]]  # path from the freezer down, summary

    @property
    def free(self) -> int:
        return sum(summary.free for _, summary in self.boxes)

    @property
    def capacity(self) -> int:
        return sum(summary.rows * summary.cols for _, summary in self.boxes)


@dataclass(frozen=True)
class TypeCapacity:
    name: str
    boxes: int
    free: int
    capacity: int


def overview(*, actor) -> tuple[list[FreezerOverview], list[TypeCapacity]]:
    """Occupancy per freezer, box by box, and free positions per box type across the bank."""
    boxes = list_containers(kind="box", actor=actor, limit=100_000).items
    paths = ancestry(b.id for b in boxes)
    freezers: dict[int, FreezerOverview] = {}
    types: dict[str, list[BoxSummary]] = {}
    for summary in boxes:
        types.setdefault(summary.type or "", []).append(summary)
        path = paths[summary.id]
        holder = next((c for c in path if c.kind in ("freezer", "tank")), None)
        if holder is not None:
            entry = freezers.setdefault(holder.id, FreezerOverview(holder, []))
            entry.boxes.append((path[path.index(holder) + 1 :], summary))
    for entry in freezers.values():
        entry.boxes.sort(key=lambda item: [c.slot for c in item[0]])
    capacity = [
        TypeCapacity(
            name, len(of_type), sum(b.free for b in of_type), sum(b.rows * b.cols for b in of_type)
        )
        for name, of_type in sorted(types.items())
    ]
    return sorted(freezers.values(), key=lambda f: f.freezer.barcode), capacity


# --- moving and retiring containers -----------------------------------------------------


def subtree_ids(container_id: int) -> list[int]:
    """The container and everything below it, in one recursive query."""
    tree = sa.select(Container.id).where(Container.id == container_id).cte("below", recursive=True)
    child = sa.orm.aliased(Container)
    tree = tree.union_all(sa.select(child.id).join(tree, child.parent_id == tree.c.id))
    return list(db.session.execute(sa.select(tree.c.id)).scalars())


def _aliquots_in(container_ids: list[int]) -> list[Aliquot]:
    query = (
        sa.select(Aliquot)
        .join(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
        .where(StoredPosition.box_id.in_(container_ids))
        .order_by(Aliquot.id)
    )
    return list(db.session.execute(query).scalars())


@dataclass(frozen=True)
class ContainerMove:
    container: Container
    parent: Container
    aliquots: int  # how many aliquots inside got their MOVED event
    # It already stood in that parent: nothing was written, no custody event.
    unchanged: bool = False


def _named(barcode: str, field: str, actor) -> Container:
    """The container ``barcode``, the NotFound naming the form's ``field``."""
    try:
        return get_container(barcode, actor=actor)
    except NotFound as err:
        raise NotFound(err.message, code=err.code, fields={field: barcode}) from err


def move_container(barcode: str, new_parent: str, *, actor) -> ContainerMove:
    """Move a box, a rack or a shelf (with everything in it) under ``new_parent``. Each
    aliquot inside gets a MOVED custody event with where it was and where it is now.

    A container already in ``new_parent`` (the same two scans again, a reload) is left as
    it is: ``unchanged``, no event."""
    container = _named(barcode, "container", actor)
    parent = _named(new_parent, "parent", actor)
    if container.parent_id == parent.id:
        return ContainerMove(container, parent, 0, unchanged=True)
    below = subtree_ids(container.id)
    if parent.id in below:
        raise Invalid(
            _l(
                "%(code)s cannot go into %(parent)s, which is inside it.",
                code=container.barcode,
                parent=parent.barcode,
            ),
            code="container.cycle",
            fields={"parent": parent.barcode},
        )
    if parent.kind not in PARENT_KINDS[container.kind]:
        raise Invalid(
            _l("A %(kind)s cannot go into a %(parent)s.", kind=container.kind, parent=parent.kind),
            fields={"parent": parent.barcode},
        )
    if parent.site_id != container.site_id:
        raise Invalid(
            _l("Moving between sites is a shipment, not a move."), fields={"parent": parent.barcode}
        )
    inside = _aliquots_in(below)
    target_class = temperature_class_of(ancestry([parent.id])[parent.id])
    for aliquot in inside:
        if target_class is None or int(target_class) > int(_storage_class(aliquot.specimen)):
            raise Conflict(
                _l(
                    "%(code)s holds samples to keep at %(needed)s °C or colder; "
                    "%(parent)s is warmer.",
                    code=container.barcode,
                    needed=_storage_class(aliquot.specimen),
                    parent=parent.barcode,
                ),
                code="storage.temperature",
                fields={"parent": parent.barcode},
            )
    before = locations([a.id for a in inside])
    container.parent = parent
    container.slot = _next_slot(parent.id)
    db.session.flush()
    for moved, path in ancestry(below).items():  # everything below now stands elsewhere
        db.session.get(Container, moved).path = describe(path)
    db.session.flush()
    after = locations([a.id for a in inside])
    for aliquot in inside:
        custody.record(
            aliquot,
            EventKind.MOVED,
            actor,
            from_location=before[aliquot.id],
            to_location=after[aliquot.id],
            details={"container": container.barcode},
        )
    return ContainerMove(container, parent, len(inside))


def _next_slot(parent_id: int | None) -> int:
    return (
        db.session.execute(
            sa.select(sa.func.count())
            .select_from(Container)
            .where(Container.parent_id == parent_id)
        ).scalar()
        + 1
    )


def delete_container(barcode: str, *, actor) -> None:
    """Remove an empty container; one that holds tubes or other containers is refused."""
    container = get_container(barcode, actor=actor)
    if db.session.execute(
        sa.select(Container.id).where(Container.parent_id == container.id).limit(1)
    ).first():
        raise Conflict(
            _l("%(code)s still contains other containers.", code=container.barcode),
            code="container.not_empty",
        )
    if db.session.execute(
        sa.select(StoredPosition.id).where(StoredPosition.box_id == container.id).limit(1)
    ).first():
        raise Conflict(
            _l("Box %(code)s still holds tubes.", code=container.barcode),
            code="container.not_empty",
        )
    db.session.delete(container)
    db.session.flush()


# --- freezer failure ---------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    barcode: str
    participant: str
    visit: str
    sample_type: str
    status: str
    location: str


def contents(barcode: str, *, actor) -> list[Content]:
    """Everything stored in a container (a whole freezer), with where it is: the tubes of
    the actor's centre (every tube, for the central biobank)."""
    container = get_container(barcode, actor=actor)
    below = subtree_ids(container.id)
    rows = db.session.execute(
        samples.aliquots_in_reach(
            sa.select(
                Aliquot.id,
                Aliquot.barcode,
                Participant.code,
                Visit.visit_code,
                Aliquot.sample_type,
                Aliquot.status,
            )
            .join(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
            .where(StoredPosition.box_id.in_(below)),
            actor,
        )
    ).all()
    where = locations([row[0] for row in rows])
    found = [Content(code, p, v, t, status, where[id_]) for id_, code, p, v, t, status in rows]
    return sorted(found, key=lambda c: c.location)


def record_excursion(
    barcode: str, *, started_at, ended_at, highest_c: float, note: str = "", actor
) -> int:
    """A temperature excursion of a freezer: a custody event for every aliquot inside it.
    Returns how many aliquots were concerned."""
    container = get_container(barcode, actor=actor)
    if ended_at < started_at:
        raise Invalid(_l("The excursion ends before it starts."), fields={"ended_at": ""})
    inside = _aliquots_in(subtree_ids(container.id))
    where = locations([a.id for a in inside])
    for aliquot in inside:
        custody.record(
            aliquot,
            EventKind.TEMPERATURE_EXCURSION,
            actor,
            at=ended_at,
            from_location=where[aliquot.id],
            reason=note.strip() or None,
            details={
                "container": container.barcode,
                "started_at": started_at.isoformat(),
                "ended_at": ended_at.isoformat(),
                "highest_c": highest_c,
            },
        )
    return len(inside)


@dataclass(frozen=True)
class Excursion:
    """A temperature excursion as it was recorded (``record_excursion``), and how many of
    the actor's aliquots it concerned."""

    container: str
    started_at: datetime
    ended_at: datetime
    highest_c: float
    note: str | None
    aliquots: int


def excursion_events(query, since: datetime, actor):
    """``query`` on custody events limited to the temperature excursions that ended at or
    after ``since`` on the aliquots the actor sees. An excursion is recorded as one event
    per aliquot inside, all with the same details: counting distinct details counts
    excursions."""
    query = query.join(Aliquot, Aliquot.id == CustodyEvent.aliquot_id).where(
        CustodyEvent.kind == EventKind.TEMPERATURE_EXCURSION.value, CustodyEvent.at >= since
    )
    return samples.aliquots_in_reach(query, actor)


def recent_excursions(since: datetime, *, actor) -> list[Excursion]:
    """The temperature excursions that ended since ``since`` on the actor's aliquots,
    the latest first."""
    query = excursion_events(
        sa.select(CustodyEvent.details, sa.func.max(CustodyEvent.reason), sa.func.count()),
        since,
        actor,
    ).group_by(CustodyEvent.details)
    found = []
    for details, note, aliquots in db.session.execute(query):
        recorded = json.loads(details)
        found.append(
            Excursion(
                container=recorded["container"],
                started_at=datetime.fromisoformat(recorded["started_at"]),
                ended_at=datetime.fromisoformat(recorded["ended_at"]),
                highest_c=recorded["highest_c"],
                note=note,
                aliquots=aliquots,
            )
        )
    return sorted(found, key=lambda e: (e.ended_at, e.container), reverse=True)


def scanned_container(code: str, actor) -> samples.CodeMeaning | None:
    """The container of the actor's centre that ``code`` is the barcode of: what samples'
    scan lookup says when a box, rack or freezer label is scanned where a tube was
    expected (registered in create_app)."""
    query = sa.select(Container.kind, Container.barcode).where(Container.barcode == code)
    row = db.session.execute(_visible(query, actor)).first()
    if row is None:
        return None
    endpoint = "storage.box" if row.kind == "box" else "storage.container"
    return samples.CodeMeaning(row.kind, row.barcode, endpoint)
