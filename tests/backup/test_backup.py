"""Backups that are proven: `backup dump` files a dump with its custody digest, and
`backup check` restores it into a scratch database, checks it there and drops it.

The dump and the drill run on PostgreSQL (the CI's PostgreSQL run); on SQLite only the
refusals are tested."""

from __future__ import annotations

import json
import shutil
import threading
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from biobank import create_app
from biobank.custody import services as custody
from biobank.custody.models import CustodyEvent
from biobank.extensions import db as _db
from biobank.samples.models import Aliquot
from biobank.storage import services as storage
from tests import factories
from tests.conftest import IN_CI, _settings


@pytest.fixture
def postgresql(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip(
            "backup dump and check work on PostgreSQL only: set BIOBANK_TEST_DATABASE_URL "
            "(the CI's PostgreSQL run does)"
        )
    missing = [name for name in ("pg_dump", "pg_restore") if not shutil.which(name)]
    if missing:
        reason = f"{' and '.join(missing)} not on PATH: install Debian's postgresql-client"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def banked(db, sites, postgresql):
    """Two participants' baseline visits, three tubes stored in a box, one tube's volume
    corrected: chains of one, two and three events."""
    factories.participant("LIM", code="LIM-001")
    factories.participant("PAR", code="PAR-001")
    tubes = factories.visit("LIM-001", "BL").aliquots + factories.visit("PAR-001", "BL").aliquots
    factories.freezer({"BX-0001": "Box 1"})
    for aliquot in tubes[:3]:
        storage.store(aliquot.barcode, "BX-0001", actor=None)
    storage.take_volume(tubes[0].barcode, 50, "aliquoted for a pilot assay", actor=None)
    db.session.commit()
    return tubes


def run(app, *args):
    return app.test_cli_runner().invoke(args=["backup", *map(str, args)])


def figures(result) -> dict:
    return json.loads(result.output.strip().splitlines()[-1])


def line(result, check: str) -> str:
    """The report's line of one check: 'OK      custody: …'."""
    found = [text for text in result.output.splitlines() if text[8:].startswith(f"{check}:")]
    assert len(found) == 1, result.output
    return found[0]


def database_exists(db, name: str) -> bool:
    query = sa.text("SELECT count(*) FROM pg_database WHERE datname = :name")
    return db.session.execute(query, {"name": name}).scalar_one() == 1


def counts(db) -> tuple[int, int]:
    aliquots = db.session.execute(sa.select(sa.func.count()).select_from(Aliquot)).scalar_one()
    events = db.session.execute(sa.select(sa.func.count()).select_from(CustodyEvent)).scalar_one()
    return aliquots, events


def newest_event(db, aliquot) -> CustodyEvent:
    return db.session.execute(
        sa.select(CustodyEvent)
        .where(CustodyEvent.aliquot_id == aliquot.id)
        .order_by(CustodyEvent.seq.desc())
        .limit(1)
    ).scalar_one()


@pytest.fixture
def triggers_off(db):
    """Switches the append-only triggers off for a raw change, as someone with DDL rights
    could; they are back on before the test goes on."""

    def change(*statements):
        db.session.execute(sa.text("ALTER TABLE custody_event DISABLE TRIGGER USER"))
        try:
            for statement, values in statements:
                db.session.execute(sa.text(statement), values)
        finally:
            db.session.execute(sa.text("ALTER TABLE custody_event ENABLE TRIGGER USER"))
        db.session.commit()

    yield change
    db.session.rollback()
    db.session.execute(sa.text("ALTER TABLE custody_event ENABLE TRIGGER USER"))
    db.session.commit()


def test_a_dump_is_restored_and_proven_then_the_scratch_database_is_dropped(
    app, db, banked, tmp_path
):
    dump = tmp_path / "biobank-2026-12-08.dump"
    made = run(app, "dump", dump)
    assert made.exit_code == 0, made.output
    assert "every chain is intact" in made.output

    filed = json.loads((tmp_path / "biobank-2026-12-08.dump.digest.json").read_text())
    aliquots, events = counts(db)
    assert filed["root"] == custody.digest().root
    assert (filed["aliquots"], filed["events"]) == (aliquots, events)
    assert (
        filed["alembic_revision"]
        == db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    )
    assert len(filed["dump_sha256"]) == 64
    assert dump.stat().st_mode & 0o077 == 0  # participants' data: the owner's only

    checked = run(app, "check", dump)
    assert checked.exit_code == 0, checked.output
    for check in ("dump file", "restore", "migrations", "schema", "custody", "digest", "cleanup"):
        assert line(checked, check).startswith("OK "), checked.output
    result = figures(checked)
    assert result["ok"] is True
    assert (result["aliquots"], result["events"]) == (aliquots, events)
    assert result["digest"] == result["filed_digest"] == filed["root"]
    assert result["scratch_database"].startswith("restore_check_biobank_2026_12_08_")
    assert not database_exists(db, result["scratch_database"])


def test_a_visit_registered_during_the_dump_is_in_neither_the_dump_nor_its_digest(
    app, db, banked, tmp_path, monkeypatch
):
    """pg_dump and the digest read one snapshot: a visit committed by someone else while
    the dump runs is in neither, and the drill finds the digest of what was dumped."""
    before = counts(db)[0]
    verify = custody.verify

    def verify_after_a_visit_is_registered(*args, **kwargs):
        def register():
            with app.app_context():
                factories.visit("PAR-001", "M2")
                _db.session.commit()

        writer = threading.Thread(target=register)
        writer.start()
        writer.join()
        return verify(*args, **kwargs)

    monkeypatch.setattr(custody, "verify", verify_after_a_visit_is_registered)
    dump = tmp_path / "nightly.dump"
    made = run(app, "dump", dump)
    assert made.exit_code == 0, made.output
    monkeypatch.undo()
    assert counts(db)[0] > before  # the visit was committed while the dump ran

    filed = json.loads((tmp_path / "nightly.dump.digest.json").read_text())
    assert filed["aliquots"] == before
    checked = run(app, "check", dump)
    assert checked.exit_code == 0, checked.output
    assert figures(checked)["aliquots"] == before


def test_a_kept_scratch_database_holds_the_restored_bank(app, db, banked, tmp_path):
    dump = tmp_path / "nightly.dump"
    assert run(app, "dump", dump).exit_code == 0
    checked = run(app, "check", dump, "--keep")
    assert checked.exit_code == 0, checked.output
    name = figures(checked)["scratch_database"]
    assert database_exists(db, name)
    scratch = sa.create_engine(db.engine.url.set(database=name), poolclass=sa.pool.NullPool)
    try:
        with scratch.connect() as connection:
            restored = connection.execute(sa.text("SELECT barcode FROM aliquot")).scalars()
            assert sorted(restored) == sorted(a.barcode for a in db.session.query(Aliquot))
    finally:
        scratch.dispose()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            admin.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_custody_rewritten_after_the_digest_was_filed_is_a_digest_mismatch(
    app, db, banked, tmp_path, triggers_off
):
    """Someone rewrites a tube's newest event with its hash and the tube's head: every
    chain verifies, and only the digest filed at dump time tells."""
    first, second = tmp_path / "first.dump", tmp_path / "second.dump"
    assert run(app, "dump", first).exit_code == 0
    aliquot = banked[1]
    event = newest_event(db, aliquot)
    forged = json.dumps({"forged": True}, separators=(",", ":"))
    fields = ("seq", "kind", "at", "actor_name", "from_location", "to_location", "reason")
    rewritten = SimpleNamespace(
        **{name: getattr(event, name) for name in fields},
        details=forged,
        prev_hash=event.prev_hash,
    )
    forged_hash = custody._hash_of(aliquot.barcode, rewritten)
    triggers_off(
        (
            "UPDATE custody_event SET details = :d, hash = :h WHERE id = :i",
            {"d": forged, "h": forged_hash, "i": event.id},
        ),
        ("UPDATE aliquot SET custody_head = :h WHERE id = :i", {"h": forged_hash, "i": aliquot.id}),
    )
    made = run(app, "dump", second)
    assert made.exit_code == 0, made.output  # the rewritten chains verify

    checked = run(app, "check", second, "--digest", f"{first}.digest.json")
    assert checked.exit_code == 1, checked.output
    assert line(checked, "custody").startswith("OK ")
    assert line(checked, "digest").startswith("FAILED ")
    assert "digest mismatch" in line(checked, "digest")
    assert line(checked, "dump file").startswith("FAILED ")  # not the file that was dumped
    result = figures(checked)
    assert result["ok"] is False
    assert result["digest"] != result["filed_digest"]
    assert not database_exists(db, result["scratch_database"])


def test_an_event_edited_after_the_dump_breaks_its_chain_in_the_drill(
    app, db, banked, tmp_path, triggers_off
):
    first, second = tmp_path / "first.dump", tmp_path / "second.dump"
    assert run(app, "dump", first).exit_code == 0
    aliquot = banked[0]
    triggers_off(
        (
            "UPDATE custody_event SET details = :d WHERE id = :i",
            {"d": '{"volume_ul":1}', "i": newest_event(db, aliquot).id},
        )
    )
    made = run(app, "dump", second)
    assert made.exit_code == 1  # the dump is kept, and the broken chain said
    assert aliquot.barcode in made.output
    assert (
        json.loads(second.with_name("second.dump.digest.json").read_text())["custody_intact"]
        is False
    )

    checked = run(app, "check", second, "--digest", f"{first}.digest.json")
    assert checked.exit_code == 1
    custody_line = line(checked, "custody")
    assert custody_line.startswith("FAILED ")
    assert aliquot.barcode in custody_line
    assert "altered" in custody_line


def test_a_truncated_dump_fails_clearly_and_leaves_no_scratch_database(app, db, banked, tmp_path):
    dump = tmp_path / "nightly.dump"
    assert run(app, "dump", dump).exit_code == 0
    whole = dump.read_bytes()
    dump.write_bytes(whole[: len(whole) // 2])

    checked = run(app, "check", dump)
    assert checked.exit_code == 1
    assert line(checked, "dump file").startswith("FAILED ")
    restore = line(checked, "restore")
    assert restore.startswith("FAILED ")
    assert "pg_restore" in restore
    assert "end of file" in restore
    for check in ("migrations", "custody", "digest"):
        assert line(checked, check).startswith("SKIPPED ")
    assert line(checked, "cleanup").startswith("OK ")
    result = figures(checked)
    assert result["ok"] is False
    assert not database_exists(db, result["scratch_database"])


def test_a_drill_without_the_digest_filed_fails(app, db, banked, tmp_path):
    dump = tmp_path / "nightly.dump"
    assert run(app, "dump", dump).exit_code == 0
    (tmp_path / "nightly.dump.digest.json").unlink()
    checked = run(app, "check", dump)
    assert checked.exit_code == 1
    assert "no digest at" in line(checked, "digest")
    assert line(checked, "custody").startswith("OK ")


def test_a_missing_pg_dump_is_named(app, db, postgresql, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    made = run(app, "dump", tmp_path / "nightly.dump")
    assert made.exit_code == 1
    assert "pg_dump was not found on PATH" in made.output
    assert not list(tmp_path.iterdir())


def test_sqlite_is_refused_with_what_to_do_instead(tmp_path):
    database = tmp_path / "biobank.sqlite3"
    app = create_app(_settings(f"sqlite:///{database}"))
    made = app.test_cli_runner().invoke(args=["backup", "dump", str(tmp_path / "x.dump")])
    assert made.exit_code == 1
    assert "SQLite" in made.output
    assert ".backup" in made.output
    assert "server stopped" in made.output
    assert not (tmp_path / "x.dump").exists()

    (tmp_path / "x.dump").write_bytes(b"PGDMP")
    checked = app.test_cli_runner().invoke(args=["backup", "check", str(tmp_path / "x.dump")])
    assert checked.exit_code == 1
    assert "--server" in checked.output
