"""The schema: migrations match the models, and the database itself holds the invariants."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from biobank.samples.models import Aliquot
from tests import factories


def schema_differences(db, metadata):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_flask_db_check_passes(app):
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_models_and_migrations_agree_and_a_difference_would_show(db):
    assert schema_differences(db, db.metadata) == []
    changed = sa.MetaData()
    for table in db.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["aliquot"].append_column(sa.Column("unmigrated", sa.Integer))
    assert [d[0] for d in schema_differences(db, changed)] == ["add_column"]


def test_migrations_go_down_to_empty_and_up_again(app, db):
    downgrade(revision="base")
    assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
    upgrade()
    assert "custody_event" in sa.inspect(db.engine).get_table_names()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite settings")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.fixture
def aliquot(db, sites):
    factories.participant("LIM", code="LIM-001")
    aliquot = factories.visit("LIM-001", "BL").aliquots[0]
    db.session.commit()
    return aliquot


@pytest.mark.parametrize(
    "assignment",
    [
        "volume_ul = -1",
        "volume_ul = initial_volume_ul + 1",
        "status = 'misplaced'",
        "freeze_thaw_count = -1",
        "series_number = series_total + 1",
    ],
)
def test_the_database_refuses_impossible_aliquot_values(db, aliquot, assignment):
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.text(f"UPDATE aliquot SET {assignment} WHERE id = :i"), {"i": aliquot.id}
        )
    db.session.rollback()


def test_the_database_refuses_a_duplicate_barcode(db, aliquot):
    other = db.session.execute(sa.select(Aliquot).where(Aliquot.id != aliquot.id)).scalars().first()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.update(Aliquot).where(Aliquot.id == other.id).values(barcode=aliquot.barcode)
        )
    db.session.rollback()


def test_the_database_refuses_a_second_visit_with_the_same_code(db, aliquot):
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.text(
                "INSERT INTO visit (participant_id, visit_code, visit_definition_id, collected_on, "
                "study_day, out_of_window, created_at) SELECT participant_id, visit_code, "
                "visit_definition_id, collected_on, study_day, out_of_window, created_at FROM visit"
            )
        )
    db.session.rollback()


def test_no_column_can_hold_a_name_or_birth_date(db):
    forbidden = ("name", "first", "last", "birth", "dob", "initials", "address", "phone", "nir")
    for table in ("participant", "visit", "specimen", "aliquot"):
        columns = [c["name"] for c in sa.inspect(db.engine).get_columns(table)]
        assert not [c for c in columns if any(word in c for word in forbidden)], table


def test_the_unrecorded_centrifugation_migration_keeps_every_tube_and_empties_placeholders(
    db, aliquot
):
    """The specimen table is copied on SQLite to change its columns: the aliquots that
    point to it survive, a registered tube keeps its values, an imported tube's made-up
    centrifugation (1 g, 1 min, 0 °C, as imports wrote it before) becomes empty."""
    imported = factories.visit("LIM-001", "M2").aliquots[0].specimen_id
    registered = aliquot.specimen_id
    force = aliquot.specimen.spin_force_g
    db.session.commit()
    db.session.remove()
    downgrade(revision="a2c4e6f8b0d1")
    db.session.execute(
        sa.text(
            "UPDATE specimen SET spin_force_g = 1, spin_minutes = 1, spin_temperature_c = 0, "
            "notes = 'Imported from an inventory spreadsheet (SHA-256 x, row 2)' WHERE id = :i"
        ),
        {"i": imported},
    )
    before = db.session.execute(sa.text("SELECT count(*) FROM aliquot")).scalar()
    db.session.commit()

    upgrade()

    rows = dict(db.session.execute(sa.text("SELECT id, spin_force_g FROM specimen")).tuples().all())
    assert rows[imported] is None
    assert rows[registered] == force > 1
    assert db.session.execute(sa.text("SELECT count(*) FROM aliquot")).scalar() == before
    if db.engine.dialect.name == "sqlite":
        assert db.session.execute(sa.text("PRAGMA foreign_key_check")).all() == []
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1


def test_a_forked_process_opens_its_own_connections(app, db):
    """gunicorn forks its workers from the arbiter that preloaded the application: a
    worker must never talk to the database over a connection its parent holds."""
    db.session.execute(sa.text("SELECT 1"))
    db.session.rollback()  # the parent's connection, back in its pool
    parent_pool = db.engine.pool
    assert parent_pool.checkedin() == 1
    child = os.fork()
    if child == 0:  # the child: a pool of its own, empty, that works
        code = 1
        try:
            fresh = db.engine.pool is not parent_pool and db.engine.pool.checkedin() == 0
            answer = db.session.execute(sa.text("SELECT 41 + 1")).scalar()
            code = 0 if fresh and answer == 42 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection is still its own, and still answers.
    assert db.session.execute(sa.text("SELECT 1")).scalar() == 1
