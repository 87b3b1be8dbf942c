"""Aliquots may be ``missing``: a tube not found at the receipt of its shipment keeps that
status (and a MISSING custody event) until it is found. The status CHECK constraint gains
the value; custody event kinds are not constrained in the database.

SQLite cannot alter a CHECK constraint, and copying the aliquot table (batch mode) fails
while the rows of every other table point to it: foreign keys can only be switched off
outside a transaction. SQLite documents a shorter way for a constraint that every row
already satisfies (https://www.sqlite.org/lang_altertable.html, "otheralter"): the table's
definition is rewritten in the schema, inside the migration's transaction.

Revision ID: a58ea3815ed2
Revises: 72a27f25a60d
Create Date: 2026-12-06 07:35:54.102398

"""

import re

from alembic import op

# revision identifiers, used by Alembic.
revision = "a58ea3815ed2"
down_revision = "72a27f25a60d"
branch_labels = None
depends_on = None

BEFORE = (
    "'registered', 'in_storage', 'checked_out', 'shipped', 'received', 'consumed', "
    "'destroyed', 'lost'"
)
AFTER = BEFORE + ", 'missing'"
NAME = "ck_aliquot_status_valid"


def _status_check(values: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        with op.batch_alter_table("aliquot", schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(NAME), type_="check")
            batch_op.create_check_constraint(batch_op.f(NAME), f"status IN ({values})")
        return
    table = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'aliquot'"
    ).scalar()
    rewritten, count = re.subn(
        rf"CONSTRAINT {NAME} CHECK \(status IN \([^)]*\)\)",
        f"CONSTRAINT {NAME} CHECK (status IN ({values}))",
        table,
    )
    if count != 1:
        raise RuntimeError(f"{NAME} not found in the definition of the aliquot table")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'aliquot'",
        (rewritten,),
    )
    # A new schema version makes every connection read the definition again.
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade():
    _status_check(AFTER)


def downgrade():
    missing = (
        op.get_bind()
        .exec_driver_sql("SELECT count(*) FROM aliquot WHERE status = 'missing'")
        .scalar()
    )
    if missing:
        raise RuntimeError(
            f"{missing} aliquots are missing: record them found (or lost) before going back "
            "to a schema without that status."
        )
    _status_check(BEFORE)
