"""Rack-scanner import: compare a scanned box with what the database believes, then apply.

A rack scanner reads every 2D-barcoded tube of a rack at once; the rack barcode in its file
is the box barcode (a 96-tube rack is an 8 × 12 box here). ``preview_rack`` parses the file
(``rackscan.parse_rack_csv``), checks each read against the box's grid and the barcode check
character, and compares the scan with the database in a constant number of set-based
queries, whatever the number of tubes. ``apply_rack`` recomputes that preview in the same
transaction and records what the scan proves: the tubes that are not where the database
says. It is also the audit tool: "scan this box and tell me what is wrong with it".

Every tube read at a position of the box falls in exactly one category:

``matched``
    A known aliquot, in storage, at the position of this box where the database has it.
    Nothing to do. (A tube whose participant has withdrawn consent is matched too when it
    is where the database says: consent governs its use, not its place.)
``moved``
    A known aliquot the database places elsewhere — at another position of this box, in
    another box — or nowhere (registered, never stored), and that ``store`` would accept
    here. Applying records it where it was read, through ``services.store(..., move=True)``:
    a MOVED custody event from its old place to the new one, or STORED when it had no
    place. Two tubes exchanged inside the box show as two ``moved`` entries.
    A move whose target position the database still gives to a tube that stays (a
    ``missing`` tube, a checked-out tube whose place is kept, a tube that is itself
    ``unexpected`` or blocked) carries ``blocked_by`` and is not applied: freeing that place
    would mean unstoring a tube nobody has looked for.
``unexpected``
    A known aliquot that the database says cannot be here: its status is not a storable
    one (shipped, consumed, destroyed, lost), it is checked out (the database waits for its
    return with the volume left: use the return page), or it would have to be stored or
    moved here and ``store`` would refuse it (consent withdrawn, a freezer warmer than the
    sample needs). ``reason`` is the code of that rule. Shown, never applied.
``unknown``
    A valid barcode that names no aliquot (or none of the user's site).
``no_read``
    The scanner saw a tube but could not read its code. ``expected`` is what the database
    has at that position.

``missing`` is the other side: an aliquot the database places at a position of this box
that the scan did not find anywhere in the rack — the position was empty, absent from the
file, or held another tube (``scanned``). Checked-out aliquots are not missing (their
place is kept while they are out), and neither is the aliquot of a position the scanner
could not read (``no_read``) or read wrongly (``errors``): the tube there may be it.
Applying never unstores a missing aliquot: a missing tube is a finding for a human.

``errors`` are reads that cannot be trusted: a position outside the box's grid, a barcode
with a wrong check character or characters, a barcode read at two positions. One error and
``apply_rack`` refuses the whole scan (scan the rack again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from biobank.custody import services as custody
from biobank.custody.services import EventKind
from biobank.errors import Conflict, Invalid
from biobank.extensions import db
from biobank.samples import barcodes
from biobank.samples import services as samples
from biobank.samples.models import Aliquot, Specimen
from biobank.storage import services as storage
from biobank.storage.models import Container, StoredPosition
from biobank.storage.positions import Grid, PositionError
from biobank.storage.rackscan import NO_READ, NO_TUBE, RackScanError, parse_rack_csv
from biobank.study.models import Participant

__all__ = [
    "CATEGORIES",
    "Cell",
    "Missing",
    "Moved",
    "NoRead",
    "RackPreview",
    "Read",
    "ScanError",
    "Unexpected",
    "apply_rack",
    "preview_rack",
]

# The keys of the JSON preview after "rack", in this order; scripts depend on them.
CATEGORIES = ("matched", "moved", "missing", "unexpected", "unknown", "no_read", "errors")

Position = tuple[int, int]
# Errors named in the message refusing to apply; the preview lists them all.
SHOWN_ERRORS = 5


# --- the preview -------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A tube read at a position: in its place (matched), or naming no aliquot (unknown)."""

    position: str
    barcode: str
    line: int

    def as_dict(self) -> dict:
        return {"position": self.position, "barcode": self.barcode, "line": self.line}


@dataclass(frozen=True)
class Moved:
    position: str
    barcode: str
    line: int
    from_location: str | None  # None: the aliquot had no place (never stored)
    from_box: str | None
    from_position: str | None
    to_location: str
    blocked_by: str | None = None  # the barcode still holding the target in the database

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "barcode": self.barcode,
            "line": self.line,
            "from": self.from_location,
            "from_box": self.from_box,
            "from_position": self.from_position,
            "to": self.to_location,
            "blocked_by": self.blocked_by,
        }


@dataclass(frozen=True)
class Missing:
    position: str
    barcode: str
    scanned: str | None  # the tube read at that position instead, None when it was empty

    def as_dict(self) -> dict:
        return {"position": self.position, "barcode": self.barcode, "scanned": self.scanned}


@dataclass(frozen=True)
class Unexpected:
    position: str
    barcode: str
    line: int
    status: str
    reason: str  # the rule's code: aliquot.not_storable, aliquot.checked_out, consent.withdrawn…
    message: str
    location: str | None  # where the database has it

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "barcode": self.barcode,
            "line": self.line,
            "status": self.status,
            "reason": self.reason,
            "message": str(self.message),
            "location": self.location,
        }


@dataclass(frozen=True)
class NoRead:
    position: str
    line: int
    expected: str | None = None  # what the database has at that position

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "barcode": None,
            "line": self.line,
            "expected": self.expected,
        }


@dataclass(frozen=True)
class ScanError:
    line: int
    position: str  # canonical when it is a position of the box, else as written
    barcode: str | None
    message: str
    expected: str | None = None

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "position": self.position,
            "barcode": self.barcode,
            "message": str(self.message),
            "expected": self.expected,
        }


@dataclass(frozen=True)
class Cell:
    """One position of the box as the preview shows it on the map."""

    position: str
    row: int
    col: int
    finding: str  # a category, or "empty"
    barcode: str | None = None  # the tube read there, else the one the database expects
    note: str = ""


@dataclass(frozen=True)
class RackPreview:
    box: Container
    grid: Grid
    location: str
    matched: list[Read] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    unexpected: list[Unexpected] = field(default_factory=list)
    unknown: list[Read] = field(default_factory=list)
    no_read: list[NoRead] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    applied: bool = False
    # Tubes read by the code of their old label (an imported inventory): barcode → that
    # code. They want their new label.
    old_labels: dict[str, str] = field(default_factory=dict)

    @property
    def rack(self) -> str:
        return self.box.barcode

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in CATEGORIES}

    @property
    def to_apply(self) -> list[Moved]:
        """The moves that applying records (the blocked ones stay as they are)."""
        return [m for m in self.moved if m.blocked_by is None]

    @property
    def blocked(self) -> list[Moved]:
        return [m for m in self.moved if m.blocked_by is not None]

    @property
    def in_order(self) -> bool:
        """Whether the box is exactly as the database believes."""
        return not any(getattr(self, name) for name in CATEGORIES if name != "matched")

    def as_dict(self) -> dict:
        return {
            "rack": self.rack,
            **{name: [entry.as_dict() for entry in getattr(self, name)] for name in CATEGORIES},
        }

    def old_labels_as_list(self) -> list[dict]:
        """The tubes read by their old label, for the API (the command's JSON keeps its
        keys)."""
        return [
            {"barcode": barcode, "legacy_barcode": old} for barcode, old in self.old_labels.items()
        ]

    def cells(self) -> list[Cell]:
        """Every position of the box in fill order, with what the scan found there."""
        found: dict[str, Cell] = {}

        def put(position, finding, barcode, note=""):
            if position in found:
                return
            row, col = self.grid.parse(position)
            found[position] = Cell(position, row, col, finding, barcode, note)

        labels = set(self.grid.all_labels())
        for error in self.errors:
            if error.position in labels:
                put(error.position, "errors", error.barcode, str(error.message))
        for entry in self.no_read:
            put(entry.position, "no_read", entry.expected)
        gone = {m.position: m.barcode for m in self.missing}
        for entry in self.unknown:
            put(entry.position, "unknown", entry.barcode, _displaced(gone, entry.position))
        for entry in self.unexpected:
            put(entry.position, "unexpected", entry.barcode, str(entry.message))
        for entry in self.moved:
            note = _displaced(gone, entry.position)
            if entry.blocked_by:
                note = str(_l("blocked by %(code)s", code=entry.blocked_by))
            put(entry.position, "moved", entry.barcode, note)
        for entry in self.matched:
            put(entry.position, "matched", entry.barcode)
        for entry in self.missing:
            put(entry.position, "missing", entry.barcode)
        return [
            found.get(label) or Cell(label, row, col, "empty")
            for label, (row, col) in zip(
                self.grid.all_labels(), self.grid.fill_order(), strict=True
            )
        ]


def _displaced(gone: dict[str, str], position: str) -> str:
    if position not in gone:
        return ""
    return str(_l("%(code)s expected here is missing", code=gone[position]))


# --- comparing a scan with the database --------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """An aliquot read in the scan, as the database knows it."""

    id: int
    barcode: str
    status: str
    consent: str
    participant: str
    needs_c: int
    box_id: int | None
    row: int | None
    col: int | None


@dataclass(frozen=True)
class _Held:
    """An aliquot the database places in the scanned box."""

    id: int
    barcode: str
    status: str


def _parse(data: bytes):
    try:
        return parse_rack_csv(data)
    except RackScanError as err:
        raise Invalid(
            _l("The rack file cannot be read: %(problem)s.", problem=str(err)),
            code="rackscan.unreadable",
            fields={"file": str(err)},
        ) from err


def _resolve_box(rack: str | None, box: str | None, actor) -> Container:
    box = (box or "").strip().upper() or None
    if rack and box and rack != box:
        raise Invalid(
            _l(
                "The file is a scan of rack %(rack)s, not of box %(box)s: "
                "check the box, or leave the box barcode empty.",
                rack=rack,
                box=box,
            ),
            code="rackscan.box_mismatch",
            fields={"box": box},
        )
    code = rack or box
    if not code:
        raise Invalid(
            _l("The file does not name its rack: give the barcode of the box."),
            code="rackscan.no_box",
            fields={"box": ""},
        )
    return storage.get_container(code, actor=actor, kind="box")


def _known(codes: Iterable[str], actor) -> dict[str, _Known]:
    """The aliquots these codes name with their place, in one query."""
    codes = list(codes)
    if not codes:
        return {}
    query = samples.aliquots_in_reach(
        sa.select(
            Aliquot.id,
            Aliquot.barcode,
            Aliquot.status,
            Participant.consent_status,
            Participant.code,
            Specimen.storage_temperature_c,
            StoredPosition.box_id,
            StoredPosition.row,
            StoredPosition.col,
        )
        .outerjoin(StoredPosition, StoredPosition.aliquot_id == Aliquot.id)
        .where(Aliquot.barcode.in_(codes)),
        actor,
    )
    return {row.barcode: _Known(*row) for row in db.session.execute(query)}


def _held(box: Container, actor) -> dict[Position, _Held]:
    """What the database has in the box, position by position, in one query. A tube of a
    centre the actor is not bound to is named only as such (its barcode is that centre's)."""
    query = (
        sa.select(
            StoredPosition.row, StoredPosition.col, Aliquot.id, Aliquot.barcode, Aliquot.status
        )
        .join(Aliquot, Aliquot.id == StoredPosition.aliquot_id)
        .where(StoredPosition.box_id == box.id)
    )
    rows = db.session.execute(query).all()
    hidden = samples.out_of_reach([row.barcode for row in rows], actor)
    elsewhere = str(_l("a tube of another centre"))
    return {
        (row, col): _Held(id_, elsewhere if code in hidden else code, status)
        for row, col, id_, code, status in rows
    }


def _too_warm(place_class: str | None, needs_c: int) -> bool:
    # The rule of services.check_storable, evaluated on plain values for the whole rack.
    return place_class is None or int(place_class) > int(needs_c)


def _barcode_message(err: barcodes.BarcodeError):
    return samples.BARCODE_MESSAGES.get(str(err), str(err))


def preview_rack(data: bytes, *, box: str | None = None, actor) -> RackPreview:
    """Compare a rack-scanner file with the database; write nothing.

    The box is the rack named in the file, else ``box``; a file naming another rack than
    ``box`` is refused. Raises Invalid for an unreadable file (naming the line and the
    column), NotFound for an unknown box. See the module docstring for the categories.
    """
    scan = _parse(data)
    container = _resolve_box(scan.rack, box, actor)
    grid = storage.grid_of(container)
    path = storage.ancestry([container.id])[container.id]
    place_class = storage.temperature_class_of(path)

    errors: list[tuple[int, str, str | None, str, Position | None]] = []
    unread: dict[Position, int] = {}  # position → line
    tubes: dict[Position, tuple[int, str]] = {}  # position → (line, barcode)
    read_at: dict[str, tuple[int, str]] = {}  # barcode → (line, position)
    old = samples.old_labels((r.barcode for r in scan.reads if r.barcode), actor=actor)
    old_labels: dict[str, str] = {}  # barcode → the old label read
    for read in scan.reads:
        try:
            cell = grid.parse(read.position)
        except PositionError:
            errors.append(
                (
                    read.line,
                    read.position,
                    read.barcode,
                    _l(
                        "position %(pos)s is not in box %(box)s (%(rows)d × %(cols)d)",
                        pos=read.position,
                        box=container.barcode,
                        rows=grid.rows,
                        cols=grid.cols,
                    ),
                    None,
                )
            )
            continue
        label = grid.label(*cell)
        if read.state == NO_TUBE:
            continue
        if read.state == NO_READ:
            unread[cell] = read.line
            continue
        if read.barcode in old:
            # A tube's old label names its tube; another centre's tube stays the code read,
            # unknown here as another centre's barcode is.
            code = old[read.barcode] or read.barcode
            if old[read.barcode] is not None:
                old_labels[code] = read.barcode
        else:
            try:
                code = barcodes.validate(read.barcode)
            except barcodes.BarcodeError as err:
                errors.append((read.line, label, read.barcode, _barcode_message(err), cell))
                continue
        if code in read_at:
            first_line, first_position = read_at[code]
            errors.append(
                (
                    read.line,
                    label,
                    code,
                    _l(
                        "%(code)s is also read at %(pos)s (line %(line)d): two tubes with "
                        "one label?",
                        code=code,
                        pos=first_position,
                        line=first_line,
                    ),
                    cell,
                )
            )
            continue
        read_at[code] = (read.line, label)
        tubes[cell] = (read.line, code)

    known = _known(read_at, actor)
    held = _held(container, actor)
    elsewhere = {k.box_id for k in known.values() if k.box_id is not None}
    paths = storage.ancestry(elsewhere | {container.id})

    def where(k: _Known) -> tuple[str | None, str | None, str | None]:
        if k.box_id is None:
            return None, None, None
        its_path = paths[k.box_id]
        label = storage.grid_of(its_path[-1]).label(k.row, k.col)
        return storage.describe(its_path, k.row, k.col), its_path[-1].barcode, label

    preview = RackPreview(container, grid, storage.describe(path), old_labels=old_labels)
    for cell in sorted(tubes):
        line, code = tubes[cell]
        label = grid.label(*cell)
        k = known.get(code)
        if k is None:
            preview.unknown.append(Read(label, code, line))
            continue
        refusal = None
        if k.status not in storage.STORABLE:
            refusal = (
                "aliquot.not_storable",
                _l(
                    "%(code)s is %(status)s: it is no longer in the bank.",
                    code=code,
                    status=k.status,
                ),
            )
        elif k.status == "checked_out":
            refusal = (
                "aliquot.checked_out",
                _l(
                    "%(code)s is checked out: return it with the volume left.",
                    code=code,
                ),
            )
        elif (k.box_id, k.row, k.col) == (container.id, *cell):
            preview.matched.append(Read(label, code, line))
            continue
        elif k.consent != "given":
            refusal = (
                "consent.withdrawn",
                _l(
                    "Biobank consent of %(p)s was withdrawn: %(code)s cannot be stored.",
                    p=k.participant,
                    code=code,
                ),
            )
        elif _too_warm(place_class, k.needs_c):
            refusal = (
                "storage.temperature",
                _l(
                    "%(code)s must be kept at %(needed)s °C or colder; %(box)s is in a %(place)s "
                    "°C freezer.",
                    code=code,
                    needed=k.needs_c,
                    box=container.barcode,
                    place=place_class or "?",
                ),
            )
        from_location, from_box, from_position = where(k)
        if refusal is not None:
            reason, message = refusal
            preview.unexpected.append(
                Unexpected(label, code, line, k.status, reason, message, from_location)
            )
            continue
        preview.moved.append(
            Moved(
                label,
                code,
                line,
                from_location,
                from_box,
                from_position,
                storage.describe(path, *cell),
            )
        )

    uncertain = set(unread) | {cell for *_, cell in errors if cell is not None}
    for cell in sorted(held):
        holder = held[cell]
        if holder.barcode in read_at or holder.status == "checked_out" or cell in uncertain:
            continue
        scanned = tubes.get(cell)
        preview.missing.append(Missing(grid.label(*cell), holder.barcode, scanned and scanned[1]))

    for cell in sorted(unread):
        expected = held.get(cell)
        preview.no_read.append(
            NoRead(grid.label(*cell), unread[cell], expected.barcode if expected else None)
        )
    for line, position, code, message, cell in sorted(errors, key=lambda e: e[0]):
        expected = held.get(cell) if cell is not None else None
        preview.errors.append(
            ScanError(line, position, code, message, expected.barcode if expected else None)
        )

    _mark_blocked(preview, held)
    return preview


def _mark_blocked(preview: RackPreview, held: dict[Position, _Held]) -> None:
    """Mark the moves whose target the database still gives to a tube that stays.

    A target held by a tube that moves out itself is freed when that move is applied, so a
    move is blocked only through a chain ending at a tube that stays; the chains are walked
    until nothing changes (a rack has at most a few hundred positions).
    """
    grid = preview.grid
    moving = {m.barcode: m for m in preview.moved}
    blocked: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for move in preview.moved:
            if move.barcode in blocked:
                continue
            holder = held.get(grid.parse(move.position))
            if holder is None or holder.barcode == move.barcode:
                continue
            if holder.barcode not in moving or holder.barcode in blocked:
                blocked[move.barcode] = holder.barcode
                changed = True
    preview.moved[:] = [
        replace(m, blocked_by=blocked[m.barcode]) if m.barcode in blocked else m
        for m in preview.moved
    ]


# --- applying ----------------------------------------------------------------------------


def apply_rack(data: bytes, *, box: str | None = None, actor) -> RackPreview:
    """Recompute the preview and record every applicable ``moved`` tube where it was read,
    in this transaction; return the preview that was applied.

    Refused (Invalid, nothing written) when the scan has errors. Missing, unexpected,
    unknown and unread tubes, and blocked moves, are left as they are and reported. Each
    moved tube gets one custody event: MOVED with its true from and to, or STORED when it
    had no place.
    """
    preview = preview_rack(data, box=box, actor=actor)
    if preview.errors:
        each = [
            str(
                _l(
                    "line %(line)d, %(pos)s: %(problem)s",
                    line=e.line,
                    pos=e.position,
                    problem=e.message,
                )
            )
            for e in preview.errors
        ]
        listed = "; ".join(each[:SHOWN_ERRORS])
        if len(each) > SHOWN_ERRORS:
            listed += str(_l("; and %(n)d more", n=len(each) - SHOWN_ERRORS))
        raise Invalid(
            _l(
                "Nothing was applied: the scan has errors (%(errors)s). Scan the rack again.",
                errors=listed,
            ),
            code="rackscan.errors",
            fields={"errors": "; ".join(each)},
        )
    _move_all(preview, actor)
    return replace(preview, applied=True)


def _move_all(preview: RackPreview, actor) -> None:
    """Store each applicable move, in an order where its target is already free.

    A chain (X into Y's place, Y into an empty one) is applied from its free end, each step
    through ``services.store(move=True)``. A cycle (two tubes swapped, or three rotated)
    has no free end: its first tube in fill order is lifted — its position row deleted, so
    the next one can take its place — and put back last with its MOVED event from its true
    old place, under the same rules ``store`` applies.
    """
    box, grid = preview.box, preview.grid
    box_code = box.barcode
    # Tubes never stored vacate nothing: they go in last, all in one batch.
    fresh = [m for m in preview.to_apply if m.from_box is None]
    pending = sorted(
        (m for m in preview.to_apply if m.from_box is not None),
        key=lambda m: grid.parse(m.position),
    )
    # Positions of this box still held by a tube that has yet to move out.
    occupied = {grid.parse(m.from_position): m.barcode for m in pending if m.from_box == box_code}
    lifted: set[str] = set()
    while pending:
        ready = [m for m in pending if grid.parse(m.position) not in occupied]
        if not ready:
            first = pending[0]
            _lift(first.barcode)
            lifted.add(first.barcode)
            del occupied[grid.parse(first.from_position)]
            continue
        for move in ready:
            if move.barcode in lifted:
                _put_back(move, box, actor)
            else:
                storage.store(move.barcode, box_code, move.position, move=True, actor=actor)
            if move.from_box == box_code:
                occupied.pop(grid.parse(move.from_position), None)
            pending.remove(move)
    storage.store_many([(m.barcode, box_code, m.position) for m in fresh], actor=actor)


def _lift(barcode: str) -> None:
    held = db.session.execute(
        sa.select(StoredPosition)
        .join(Aliquot, Aliquot.id == StoredPosition.aliquot_id)
        .where(Aliquot.barcode == barcode)
    ).scalar_one()
    db.session.delete(held)
    db.session.flush()


def _put_back(move: Moved, box: Container, actor) -> None:
    aliquot = samples.find_aliquot(move.barcode, actor=actor)
    path = storage.ancestry([box.id])[box.id]
    storage.check_storable(aliquot, path)  # the rules of store(), which cannot be used here
    row, col = storage.grid_of(box).parse(move.position)
    box_code = box.barcode  # a failed flush expires every loaded object
    db.session.add(StoredPosition(aliquot_id=aliquot.id, box_id=box.id, row=row, col=col))
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:
        raise Conflict(
            _l(
                "Position %(pos)s of box %(box)s was just taken: scan the rack again.",
                pos=move.position,
                box=box_code,
            ),
            code="position.taken",
            fields={"position": move.position},
        ) from err
    if aliquot.status != "checked_out":
        aliquot.status = "in_storage"
    custody.record(
        aliquot,
        EventKind.MOVED,
        actor,
        from_location=move.from_location,
        to_location=move.to_location,
    )
