"""The custody log: append-only, and any tampering found by verify."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.custody.hashing import merkle_root
from biobank.custody.models import CustodyEvent
from biobank.samples import services as samples
from tests import factories


@pytest.fixture
def aliquots(db, sites):
    factories.participant("LIM", code="LIM-001")
    factories.participant("PAR", code="PAR-001")
    first = factories.visit("LIM-001", "BL").aliquots
    second = factories.visit("PAR-001", "BL").aliquots
    for aliquot in first[:3]:
        samples.correct_volume(aliquot.barcode, 400, "recount", actor=None)
        samples.correct_volume(aliquot.barcode, 350, "recount again", actor=None)
    db.session.commit()
    return first + second


@pytest.fixture
def triggers_off(db, aliquots):
    """What someone with DDL rights would do first; the hash chain must still catch them.
    (PostgreSQL keeps one database for the run, so the trigger is switched back on.)"""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("ALTER TABLE custody_event DISABLE TRIGGER USER"))
    else:  # each SQLite test has its own copy of the database
        db.session.execute(sa.text("DROP TRIGGER custody_event_no_update"))
        db.session.execute(sa.text("DROP TRIGGER custody_event_no_delete"))
    db.session.commit()
    yield
    if db.engine.dialect.name == "postgresql":
        db.session.rollback()
        db.session.execute(sa.text("ALTER TABLE custody_event ENABLE TRIGGER USER"))
        db.session.commit()


def event_of(db, aliquot, seq):
    return db.session.execute(
        sa.select(CustodyEvent).where(
            CustodyEvent.aliquot_id == aliquot.id, CustodyEvent.seq == seq
        )
    ).scalar_one()


def test_an_untouched_log_verifies(aliquots):
    report = custody.verify()
    assert report.intact
    assert report.aliquots == 20
    assert report.events == 20 + 6


def test_the_database_refuses_to_update_or_delete_an_event(db, aliquots):
    event = event_of(db, aliquots[0], 1)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        db.session.execute(
            sa.text("UPDATE custody_event SET reason = 'x' WHERE id = :i"), {"i": event.id}
        )
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        db.session.execute(sa.text("DELETE FROM custody_event WHERE id = :i"), {"i": event.id})
    db.session.rollback()


def test_an_edited_event_is_found(db, aliquots, triggers_off):
    target = event_of(db, aliquots[1], 2)
    db.session.execute(
        sa.text("UPDATE custody_event SET reason = 'nothing to see' WHERE id = :i"),
        {"i": target.id},
    )
    db.session.commit()
    report = custody.verify()
    assert not report.intact
    assert report.first_break.barcode == aliquots[1].barcode
    assert report.first_break.seq == 2
    assert "altered" in report.first_break.problem


def test_an_edited_time_is_found(db, aliquots, triggers_off):
    target = event_of(db, aliquots[0], 1)
    db.session.execute(
        sa.update(CustodyEvent)
        .where(CustodyEvent.id == target.id)
        .values(at=target.at.replace(year=2020))
    )
    db.session.commit()
    assert custody.verify().first_break.seq == 1


def test_a_deleted_middle_event_is_found(db, aliquots, triggers_off):
    db.session.execute(
        sa.text("DELETE FROM custody_event WHERE id = :i"), {"i": event_of(db, aliquots[2], 2).id}
    )
    db.session.commit()
    report = custody.verify()
    assert report.first_break.barcode == aliquots[2].barcode
    assert report.first_break.seq == 3  # the event after the gap no longer links


def test_a_deleted_newest_event_is_found_through_the_aliquot_head(db, aliquots, triggers_off):
    db.session.execute(
        sa.text("DELETE FROM custody_event WHERE id = :i"), {"i": event_of(db, aliquots[0], 3).id}
    )
    db.session.commit()
    report = custody.verify()
    assert report.first_break.barcode == aliquots[0].barcode
    assert "removed" in report.first_break.problem


def test_an_aliquot_whose_events_are_all_deleted_is_found(db, aliquots, triggers_off):
    db.session.execute(
        sa.text("DELETE FROM custody_event WHERE aliquot_id = :a"), {"a": aliquots[5].id}
    )
    db.session.commit()
    assert custody.verify().first_break.barcode == aliquots[5].barcode


def test_an_event_moved_to_another_aliquot_is_found(db, aliquots, triggers_off):
    db.session.execute(
        sa.text("UPDATE custody_event SET aliquot_id = :other, seq = 2 WHERE id = :i"),
        {"other": aliquots[9].id, "i": event_of(db, aliquots[0], 3).id},
    )
    db.session.commit()
    report = custody.verify()
    assert report.broken_chains == 2


def test_a_whole_rewritten_chain_is_found_by_the_digest(db, aliquots, request):
    """Someone who rewrites an event, its hash and the aliquot's head passes verify;
    the digest filed earlier is what proves it."""
    filed = custody.digest()
    request.getfixturevalue("triggers_off")
    aliquot = aliquots[3]
    event = event_of(db, aliquot, 1)
    forged_details = json.dumps({"forged": True}, separators=(",", ":"))
    db.session.execute(
        sa.update(CustodyEvent).where(CustodyEvent.id == event.id).values(details=forged_details)
    )
    db.session.commit()
    db.session.refresh(event)
    new_hash = custody._hash_of(aliquot.barcode, event)
    db.session.execute(
        sa.update(CustodyEvent).where(CustodyEvent.id == event.id).values(hash=new_hash)
    )
    aliquot.custody_head = new_hash
    db.session.commit()

    assert custody.verify().intact
    assert custody.digest().root != filed.root


def test_the_digest_is_the_same_for_the_same_heads(aliquots):
    assert custody.digest().root == custody.digest().root
    assert custody.digest().aliquots == 20


def test_merkle_root_depends_on_every_leaf_and_its_order():
    leaves = [f"leaf-{n}".encode() for n in range(7)]
    root, count = merkle_root(leaves)
    assert count == 7
    assert merkle_root(reversed(leaves))[0] != root
    for n in range(7):
        changed = list(leaves)
        changed[n] = b"other"
        assert merkle_root(changed)[0] != root
    assert merkle_root(leaves[:6])[0] != root


def test_verify_reads_in_bounded_batches(db, aliquots):
    # A batch smaller than one chain still checks every chain correctly.
    assert custody.verify(batch_size=2).intact


def test_verify_command_exits_non_zero_naming_the_broken_event(app, db, aliquots, request):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["custody", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "every chain is intact" in ok.output
    request.getfixturevalue("triggers_off")

    db.session.execute(
        sa.text("UPDATE custody_event SET actor_name = 'mallory' WHERE id = :i"),
        {"i": event_of(db, aliquots[4], 1).id},
    )
    db.session.commit()
    broken = runner.invoke(args=["custody", "verify"])
    assert broken.exit_code == 1
    assert aliquots[4].barcode in broken.output
    assert "event #1" in broken.output


def test_verify_command_writes_the_digest(app, aliquots, tmp_path):
    out = tmp_path / "digest.json"
    result = app.test_cli_runner().invoke(args=["custody", "verify", "--digest", str(out)])
    assert result.exit_code == 0, result.output
    filed = json.loads(out.read_text())
    assert filed["aliquots"] == 20 and len(filed["root"]) == 64 and filed["taken_at"]
