"""A registration opens each new aliquot's chain with its REGISTERED event written with the
aliquot row (custody.open_chains): the same events record() would write, in a number of
statements that does not grow with the aliquots."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.custody.hashing import event_hash
from biobank.custody.models import GENESIS_HASH, CustodyEvent
from biobank.samples import services as samples
from biobank.samples.models import Aliquot
from biobank.storage import services as storage
from tests import factories


def events_of(db, aliquot) -> list[CustodyEvent]:
    return list(
        db.session.execute(
            sa.select(CustodyEvent)
            .where(CustodyEvent.aliquot_id == aliquot.id)
            .order_by(CustodyEvent.seq)
        ).scalars()
    )


@contextmanager
def statements(db):
    sent: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)


def test_each_registered_aliquot_starts_its_chain_with_one_registered_event(db, make_user):
    technician = make_user("technician")
    factories.participant("LIM", code="LIM-001")
    registration = factories.visit("LIM-001", "BL", actor=technician)
    db.session.commit()
    db.session.expire_all()
    assert len(registration.aliquots) == 10
    for specimen in registration.specimens:
        for aliquot in specimen.aliquots:
            (event,) = events_of(db, aliquot)
            assert (event.seq, event.kind, event.prev_hash) == (1, "REGISTERED", GENESIS_HASH)
            assert (event.actor_id, event.actor_name) == (technician.id, technician.username)
            assert event.at == specimen.created_at
            assert json.loads(event.details) == {
                "specimen": specimen.id,
                "sprec": specimen.sprec_code,
                "volume_ul": 500,
                "series": f"{aliquot.series_number}/5",
            }
            assert event.hash == event_hash(
                barcode=aliquot.barcode,
                seq=1,
                kind="REGISTERED",
                at=event.at,
                actor=technician.username,
                from_location=None,
                to_location=None,
                reason=None,
                details=event.details,
                prev_hash=GENESIS_HASH,
            )
            # The row carries its chain's head from its insert on.
            assert (aliquot.custody_head, aliquot.custody_count) == (event.hash, 1)
    assert custody.verify().intact


def test_a_chain_opened_at_registration_goes_on_as_any_other(db, make_user):
    technician = make_user("technician")
    factories.freezer({"BX-0001": "Box 1"})
    factories.participant("LIM", code="LIM-001")
    aliquot = factories.visit("LIM-001", "BL", actor=technician).aliquots[0]
    db.session.commit()
    storage.store(aliquot.barcode, "BX-0001", "A1", actor=technician)
    samples.correct_volume(aliquot.barcode, 400, "recount", actor=technician)
    db.session.commit()
    assert [(e.seq, e.kind) for e in events_of(db, aliquot)] == [
        (1, "REGISTERED"),
        (2, "STORED"),
        (3, "VOLUME_CORRECTED"),
    ]
    assert custody.verify().intact


def test_a_barcode_already_taken_writes_nothing_of_the_batch(db, sites):
    factories.participant("LIM", code="LIM-001")
    taken = factories.visit("LIM-001", "BL").aliquots[0]
    db.session.commit()
    events = db.session.execute(sa.select(sa.func.count()).select_from(CustodyEvent)).scalar()

    def row(barcode: str) -> dict:
        return {
            "barcode": barcode,
            "specimen_id": taken.specimen_id,
            "sample_type": "SER",
            "series_number": 1,
            "series_total": 1,
            "initial_volume_ul": 100,
            "volume_ul": 100,
        }

    fresh = "7KQ3M9XW4"
    with pytest.raises(sa.exc.IntegrityError):
        custody.open_chains(
            [(row(fresh), {}), (row(taken.barcode), {})], custody.EventKind.REGISTERED, None
        )
    db.session.rollback()
    assert db.session.execute(sa.select(Aliquot).where(Aliquot.barcode == fresh)).first() is None
    count = db.session.execute(sa.select(sa.func.count()).select_from(CustodyEvent)).scalar()
    assert count == events
    assert custody.verify().intact


def test_nothing_to_open_writes_nothing(db, sites):
    with statements(db) as sent:
        assert custody.open_chains([], custody.EventKind.REGISTERED, None) == []
    assert sent == []


def test_a_registrations_statements_do_not_grow_with_its_aliquots(db, sites):
    counts = []
    for n, aliquots in enumerate((1, 20), start=1):
        code = f"LIM-{n:03d}"
        factories.participant("LIM", code=code)
        db.session.commit()
        db.session.expunge_all()  # each registration reads what it needs afresh
        drawn = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
        tubes = [factories.tube(t, collected_at=drawn, aliquots=aliquots) for t in ("SST", "EDTA")]
        with statements(db) as sent:
            registration = samples.register_collection(code, "BL", tubes, actor=None)
            db.session.flush()
        assert len(registration.aliquots) == 2 * aliquots
        counts.append(len(sent))
        db.session.commit()
    assert counts[0] == counts[1]
    assert custody.verify().intact
    total = db.session.execute(sa.select(sa.func.count()).select_from(Aliquot)).scalar()
    assert total == 42
