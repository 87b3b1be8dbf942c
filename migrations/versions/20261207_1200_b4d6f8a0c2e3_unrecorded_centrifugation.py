"""A tube imported from an inventory spreadsheet has no recorded centrifugation: the
centrifuge's force, duration and temperature and the temperatures before and after it
may be empty (not recorded) instead of holding made-up values. Specimens imported
before this change held 1 g, 1 min, 0 °C and "RT": they become empty. Old labels are
found whatever their case through an index on ``lower(legacy_barcode)``.

On SQLite, ``specimen`` is copied by batch mode to change its columns (SQLite alters no
column in place); foreign keys are off during migrations and checked before they commit
(migrations/env.py), as the aliquots that point to the specimens must survive the copy.

Revision ID: b4d6f8a0c2e3
Revises: a2c4e6f8b0d1
Create Date: 2026-12-07 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b4d6f8a0c2e3"
down_revision = "a2c4e6f8b0d1"
branch_labels = None
depends_on = None

UNRECORDED = ("spin_temperature_c", "spin_force_g", "spin_minutes")
TEMPERATURES = ("precentrifugation_temperature", "postcentrifugation_temperature")
IMPORTED = "notes LIKE 'Imported from an inventory spreadsheet%'"


def _columns(nullable: bool) -> None:
    with op.batch_alter_table("specimen", schema=None) as batch_op:
        batch_op.alter_column("spin_temperature_c", existing_type=sa.Float(), nullable=nullable)
        batch_op.alter_column("spin_force_g", existing_type=sa.Integer(), nullable=nullable)
        batch_op.alter_column("spin_minutes", existing_type=sa.Integer(), nullable=nullable)
        for name in TEMPERATURES:
            batch_op.alter_column(name, existing_type=sa.String(length=8), nullable=nullable)


def upgrade():
    _columns(nullable=True)
    op.execute(
        "UPDATE specimen SET spin_temperature_c = NULL, spin_force_g = NULL, "
        "spin_minutes = NULL, precentrifugation_temperature = NULL, "
        "postcentrifugation_temperature = NULL "
        f"WHERE {IMPORTED} AND spin_force_g = 1 AND spin_minutes = 1"
    )
    op.create_index(
        "ix_aliquot_legacy_barcode_lower",
        "aliquot",
        [sa.text("lower(legacy_barcode)")],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_aliquot_legacy_barcode_lower", table_name="aliquot")
    # The columns hold a value again: the placeholders the imports wrote before.
    op.execute(
        "UPDATE specimen SET spin_temperature_c = 0, spin_force_g = 1, spin_minutes = 1, "
        "precentrifugation_temperature = 'RT', postcentrifugation_temperature = 'RT' "
        "WHERE spin_force_g IS NULL"
    )
    _columns(nullable=False)
