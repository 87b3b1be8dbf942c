"""An existing inventory imported from a spreadsheet: each aliquot may keep the code of
its old label (``legacy_barcode``, unique across the bank), and each file applied is
kept by its SHA-256 so that it is never applied twice.

``aliquot`` gets a plain column in place (``recreate="never"``: rows of other tables point
to it) and a unique index (SQLite cannot add a unique constraint to a table in place).

Revision ID: a2c4e6f8b0d1
Revises: f1b3d5e7a9c2
Create Date: 2026-12-07 11:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a2c4e6f8b0d1"
down_revision = "f1b3d5e7a9c2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("aliquot", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("legacy_barcode", sa.String(length=64), nullable=True))
    op.create_index("uq_aliquot_legacy_barcode", "aliquot", ["legacy_barcode"], unique=True)
    op.create_table(
        "inventory_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("aliquots", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["applied_by_id"],
            ["user_account.id"],
            name=op.f("fk_inventory_import_applied_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_import")),
        sa.UniqueConstraint("sha256", name=op.f("uq_inventory_import_sha256")),
    )


def downgrade():
    op.drop_table("inventory_import")
    op.drop_index("uq_aliquot_legacy_barcode", table_name="aliquot")
    with op.batch_alter_table("aliquot", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("legacy_barcode")
