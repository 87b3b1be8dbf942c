"""Writing custody events, reading an aliquot's history, and verifying every chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.attributes import set_committed_value

from biobank.custody.hashing import canonical_json, event_hash, head_leaf, merkle_root
from biobank.custody.models import GENESIS_HASH, CustodyEvent
from biobank.db import utcnow
from biobank.errors import Conflict, Invalid
from biobank.extensions import db

SYSTEM_ACTOR = "system"


class EventKind(StrEnum):
    REGISTERED = "REGISTERED"
    # Registered from an existing inventory's spreadsheet (the file's SHA-256 and row).
    IMPORTED = "IMPORTED"
    LABEL_PRINTED = "LABEL_PRINTED"
    STATUS_CHANGED = "STATUS_CHANGED"
    VOLUME_CORRECTED = "VOLUME_CORRECTED"
    CORRECTION = "CORRECTION"
    STORED = "STORED"
    MOVED = "MOVED"
    CHECKED_OUT = "CHECKED_OUT"
    RETURNED = "RETURNED"
    SHIPPED = "SHIPPED"
    RECEIVED = "RECEIVED"
    CONSUMED = "CONSUMED"
    DESTROYED = "DESTROYED"
    LOST = "LOST"
    TEMPERATURE_EXCURSION = "TEMPERATURE_EXCURSION"
    RESERVED = "RESERVED"
    RELEASED = "RELEASED"
    MISSING = "MISSING"
    FOUND = "FOUND"


def record(
    aliquot,
    kind: EventKind | str,
    actor,
    *,
    at: datetime | None = None,
    from_location: str | None = None,
    to_location: str | None = None,
    reason: str | None = None,
    details: dict | None = None,
) -> CustodyEvent:
    """Append one event to ``aliquot``'s chain and move the chain head on the aliquot row.

    Must be called in the same transaction as the change it records. Two transactions
    appending to the same chain at once collide on the (aliquot, seq) unique constraint:
    the second is refused with Conflict and writes nothing.
    """
    kind = EventKind(kind)
    if aliquot.id is None:
        db.session.flush()  # the event needs the aliquot's id
    event = CustodyEvent(
        aliquot_id=aliquot.id,
        seq=aliquot.custody_count + 1,
        kind=kind.value,
        at=at or utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_name=getattr(actor, "username", None) or SYSTEM_ACTOR,
        from_location=from_location,
        to_location=to_location,
        reason=reason or None,
        details=canonical_json(details or {}),
        prev_hash=aliquot.custody_head,
    )
    event.hash = _hash_of(aliquot.barcode, event)
    aliquot.custody_head = event.hash
    aliquot.custody_count = event.seq
    db.session.add(event)
    barcode = aliquot.barcode  # a failed flush expires the aliquot
    try:
        db.session.flush()
    except sa.exc.IntegrityError as err:
        raise Conflict(
            _l(
                "Aliquot %(barcode)s was changed by someone else at the same moment. "
                "Reload it and try again.",
                barcode=barcode,
            ),
            code="custody.concurrent_change",
        ) from err
    return event


def record_many(changes, kind: EventKind | str, actor) -> int:
    """Append one event to each of many chains in a fixed number of statements.

    ``changes`` is a list of (aliquot, fields) where fields are record()'s keyword
    arguments (from_location, to_location, reason, details, at). Same guarantees as
    record(): same transaction, and a concurrent append to any of the chains makes the
    whole batch fail with Conflict.
    """
    kind = EventKind(kind)
    # In aliquot order, heads first: the rows are locked in the order every writer takes
    # them (record() updates the aliquot before inserting its event too), so two batches
    # over the same tubes queue instead of deadlocking.
    changes = sorted(changes, key=lambda change: change[0].id)
    rows, heads, now = [], [], utcnow()
    for aliquot, fields in changes:
        row = _event_row(
            aliquot.barcode,
            aliquot.id,
            aliquot.custody_count + 1,
            aliquot.custody_head,
            kind,
            actor,
            fields,
            now,
        )
        rows.append(row)
        heads.append({"id": aliquot.id, "custody_head": row["hash"], "custody_count": row["seq"]})
    if not rows:
        return 0
    # Core statements on the session's connection: the ORM's per-row bookkeeping would cost
    # more than the rows themselves. One executemany UPDATE by primary key, the events,
    # then the loaded rows told what they now hold.
    connection = db.session.connection()
    chained = _chained_model().__table__
    connection.execute(
        sa.update(chained)
        .where(chained.c.id == sa.bindparam("row_id"))
        .values(custody_head=sa.bindparam("head"), custody_count=sa.bindparam("count")),
        [
            {"row_id": h["id"], "head": h["custody_head"], "count": h["custody_count"]}
            for h in heads
        ],
    )
    try:
        connection.execute(sa.insert(CustodyEvent.__table__), rows)
    except sa.exc.IntegrityError as err:
        raise Conflict(
            _l(
                "Some of these aliquots were changed by someone else at the same "
                "moment. Nothing was written; try again."
            ),
            code="custody.concurrent_change",
        ) from err
    for (aliquot, _), head in zip(changes, heads, strict=True):
        set_committed_value(aliquot, "custody_head", head["custody_head"])
        set_committed_value(aliquot, "custody_count", head["custody_count"])
    return len(rows)


def open_chains(changes, kind: EventKind | str, actor) -> list:
    """Insert new aliquots, each with its chain opened by its first event: two statements
    whatever their number.

    ``changes`` is a list of (row, fields): ``row`` the new aliquot's columns (its barcode
    among them), ``fields`` as for record_many() (at, details, ...). Each aliquot is
    inserted with its chain's head and count already on it (never updated afterwards),
    then every event in one statement; the events are those record() would write, hash for
    hash. Must be called in the transaction that creates the aliquots. The insert may break
    a unique constraint (a barcode): that IntegrityError is raised as it is, for the caller
    to say what it means. Returns the aliquots, in the order of ``changes``.
    """
    if not changes:
        return []
    kind = EventKind(kind)
    rows, events, now = [], [], utcnow()
    for row, fields in changes:
        event = _event_row(row["barcode"], None, 1, GENESIS_HASH, kind, actor, fields, now)
        rows.append({**row, "custody_head": event["hash"], "custody_count": event["seq"]})
        events.append(event)
    model = _chained_model()
    # Found again by barcode: RETURNING gives the rows in no set order.
    inserted = {
        aliquot.barcode: aliquot
        for aliquot in db.session.scalars(sa.insert(model).returning(model), rows)
    }
    aliquots = [inserted[row["barcode"]] for row in rows]
    for aliquot, event in zip(aliquots, events, strict=True):
        event["aliquot_id"] = aliquot.id
    db.session.connection().execute(sa.insert(CustodyEvent.__table__), events)
    return aliquots


def _event_row(
    barcode: str,
    aliquot_id: int | None,
    seq: int,
    prev_hash: str,
    kind: EventKind,
    actor,
    fields: dict,
    now: datetime,
) -> dict:
    """Event ``seq`` of an aliquot's chain as a plain row (not an ORM object: thousands of
    them at a time), its hash computed."""
    actor_name = getattr(actor, "username", None) or SYSTEM_ACTOR
    row = {
        "aliquot_id": aliquot_id,
        "seq": seq,
        "kind": kind.value,
        "at": fields.get("at") or now,
        "actor_id": getattr(actor, "id", None),
        "actor_name": actor_name,
        "from_location": fields.get("from_location"),
        "to_location": fields.get("to_location"),
        "reason": fields.get("reason") or None,
        "details": canonical_json(fields.get("details") or {}),
        "prev_hash": prev_hash,
    }
    row["hash"] = event_hash(
        barcode=barcode,
        seq=seq,
        kind=row["kind"],
        at=row["at"],
        actor=actor_name,
        from_location=row["from_location"],
        to_location=row["to_location"],
        reason=row["reason"],
        details=row["details"],
        prev_hash=prev_hash,
    )
    return row


def _hash_of(barcode: str, event) -> str:
    return event_hash(
        barcode=barcode,
        seq=event.seq,
        kind=event.kind,
        at=event.at,
        actor=event.actor_name,
        from_location=event.from_location,
        to_location=event.to_location,
        reason=event.reason,
        details=event.details,
        prev_hash=event.prev_hash,
    )


def history(aliquot_id: int, *, limit: int | None = None, newest_first: bool = False):
    """An aliquot's events in chain order (or newest first, for a short recent list)."""
    order = CustodyEvent.seq.desc() if newest_first else CustodyEvent.seq
    query = db.select(CustodyEvent).where(CustodyEvent.aliquot_id == aliquot_id).order_by(order)
    if limit is not None:
        query = query.limit(limit)
    return db.session.execute(query).scalars().all()


def aliquots_with_event(aliquot_ids: list[int], kind: EventKind | str) -> set[int]:
    """Which of these aliquots already have an event of ``kind`` (one query)."""
    if not aliquot_ids:
        return set()
    query = (
        sa.select(CustodyEvent.aliquot_id)
        .distinct()
        .where(CustodyEvent.aliquot_id.in_(aliquot_ids), CustodyEvent.kind == EventKind(kind).value)
    )
    return set(db.session.execute(query).scalars())


@dataclass(frozen=True)
class Break:
    barcode: str
    seq: int | None
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event #{self.seq} (id {self.event_id})" if self.seq else "chain head"
        return f"aliquot {self.barcode}, {where}: {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    aliquots: int
    events: int
    broken_chains: int
    first_break: Break | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


def _chained_model():
    # The aliquot class, reached through the relationship so custody need not import it.
    return CustodyEvent.aliquot.property.mapper.class_


def _chain_rows(batch_size: int) -> Iterator:
    aliquot = _chained_model()
    query = (
        sa.select(
            aliquot.id.label("aliquot_id"),
            aliquot.barcode,
            aliquot.custody_head,
            aliquot.custody_count,
            CustodyEvent,
        )
        .outerjoin(CustodyEvent, CustodyEvent.aliquot_id == aliquot.id)
        .order_by(aliquot.id, CustodyEvent.seq)
        .execution_options(yield_per=batch_size)
    )
    yield from db.session.execute(query)


def _check_event(barcode: str, expected_seq: int, running: str, event) -> str | None:
    if event.seq != expected_seq:
        return f"sequence number {event.seq} where {expected_seq} was expected (event missing)"
    if event.prev_hash != running:
        return "previous-hash link does not match the preceding event (event removed or inserted)"
    if _hash_of(barcode, event) != event.hash:
        return "content does not match its hash (event altered)"
    return None


def verify(batch_size: int = 2000) -> VerifyReport:
    """Recompute every chain, streaming aliquot by aliquot in bounded memory."""
    aliquots = events = broken = 0
    first: Break | None = None
    current = None  # (aliquot_id, barcode, head, count)
    running, seen, chain_broken = GENESIS_HASH, 0, False

    def close_chain() -> Break | None:
        _, barcode, head, count = current
        if chain_broken:
            return None
        if seen != count or running != head:
            return Break(
                barcode,
                None,
                None,
                f"aliquot row says {count} events ending in {head[:12]}…, "
                f"the log holds {seen} ending in {running[:12]}… (newest events removed?)",
            )
        return None

    for row in _chain_rows(batch_size):
        if current is None or row.aliquot_id != current[0]:
            if current is not None and (problem := close_chain()):
                broken += 1
                first = first or problem
            current = (row.aliquot_id, row.barcode, row.custody_head, row.custody_count)
            running, seen, chain_broken = GENESIS_HASH, 0, False
            aliquots += 1
        event = row.CustodyEvent
        if event is None or chain_broken:
            continue
        events += 1
        seen += 1
        problem = _check_event(row.barcode, seen, running, event)
        if problem:
            chain_broken = True
            broken += 1
            first = first or Break(row.barcode, event.seq, event.id, problem)
        running = event.hash
        db.session.expunge(event)  # keep memory bounded on millions of events
    if current is not None and (problem := close_chain()):
        broken += 1
        first = first or problem
    return VerifyReport(aliquots, events, broken, first)


@dataclass(frozen=True)
class Digest:
    taken_at: datetime
    aliquots: int
    root: str

    def as_dict(self) -> dict:
        return {"taken_at": self.taken_at.isoformat(), "aliquots": self.aliquots, "root": self.root}


def digest(batch_size: int = 5000) -> Digest:
    """A Merkle root over every chain head, to file elsewhere and compare later."""
    aliquot = _chained_model()
    query = (
        sa.select(aliquot.barcode, aliquot.custody_count, aliquot.custody_head)
        .order_by(aliquot.barcode)
        .execution_options(yield_per=batch_size)
    )
    leaves = (head_leaf(*row) for row in db.session.execute(query))
    root, count = merkle_root(leaves)
    return Digest(utcnow(), count, root)


def require_reason(reason: str | None, what) -> str:
    """Corrections and overrides must say why; the reason is part of the hashed event."""
    if not reason or not reason.strip():
        raise Invalid(_l("A reason is required to %(what)s.", what=what), fields={"reason": ""})
    return reason.strip()
