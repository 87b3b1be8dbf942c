"""Assays: analytes (as data), assay runs kept with their file and preview (SHA-256 unique:
a file is imported once), the results linked to aliquots, and the wells of accepted plates.

Revision ID: 72a27f25a60d
Revises: 206bbd8425a3
Create Date: 2026-11-29 19:59:53.258066

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "72a27f25a60d"
down_revision = "206bbd8425a3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "analyte",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("allowed_values", sa.Text(), nullable=False),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('numeric', 'qualitative')", name=op.f("ck_analyte_kind_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analyte")),
        sa.UniqueConstraint("code", name=op.f("uq_analyte_code")),
    )
    op.create_table(
        "assay_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("analyte_id", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("plate_map", sa.LargeBinary(), nullable=True),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("kit_lot", sa.String(length=100), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("preview", sa.Text(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(status = 'rejected') = (reason <> '')", name=op.f("ck_assay_run_rejected_with_reason")
        ),
        sa.CheckConstraint("kind IN ('plate', 'sheet')", name=op.f("ck_assay_run_kind_valid")),
        sa.CheckConstraint(
            "status IN ('preview', 'accepted', 'rejected')", name=op.f("ck_assay_run_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["analyte_id"], ["analyte.id"], name=op.f("fk_assay_run_analyte_id_analyte")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_assay_run_created_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["user_account.id"],
            name=op.f("fk_assay_run_decided_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assay_run")),
        sa.UniqueConstraint("file_sha256", name=op.f("uq_assay_run_file_sha256")),
    )
    op.create_table(
        "assay_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("aliquot_id", sa.Integer(), nullable=False),
        sa.Column("analyte_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("comparator", sa.String(length=1), nullable=True),
        sa.Column("flag", sa.String(length=8), nullable=True),
        sa.Column("limit", sa.Float(), nullable=True),
        sa.Column("text", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("dilution", sa.Float(), nullable=False),
        sa.Column("cv_pct", sa.Float(), nullable=True),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "comparator IN ('<', '>')", name=op.f("ck_assay_result_comparator_valid")
        ),
        sa.CheckConstraint("flag IN ('<LLOQ', '>ULOQ')", name=op.f("ck_assay_result_flag_valid")),
        sa.ForeignKeyConstraint(
            ["aliquot_id"], ["aliquot.id"], name=op.f("fk_assay_result_aliquot_id_aliquot")
        ),
        sa.ForeignKeyConstraint(
            ["analyte_id"], ["analyte.id"], name=op.f("fk_assay_result_analyte_id_analyte")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["assay_run.id"], name=op.f("fk_assay_result_run_id_assay_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assay_result")),
        sa.UniqueConstraint(
            "run_id",
            "aliquot_id",
            "analyte_id",
            name=op.f("uq_assay_result_run_id_aliquot_id_analyte_id"),
        ),
    )
    with op.batch_alter_table("assay_result", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assay_result_aliquot_id"), ["aliquot_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_assay_result_run_id"), ["run_id"], unique=False)

    op.create_table(
        "assay_well",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.String(length=3), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.String(length=40), nullable=False),
        sa.Column("aliquot_id", sa.Integer(), nullable=True),
        sa.Column("dilution", sa.Float(), nullable=False),
        sa.Column("response", sa.Float(), nullable=True),
        sa.Column("raw", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "role IN ('standard', 'blank', 'control', 'sample')",
            name=op.f("ck_assay_well_role_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["aliquot_id"], ["aliquot.id"], name=op.f("fk_assay_well_aliquot_id_aliquot")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["assay_run.id"], name=op.f("fk_assay_well_run_id_assay_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assay_well")),
        sa.UniqueConstraint("run_id", "position", name=op.f("uq_assay_well_run_id_position")),
    )


def downgrade():
    op.drop_table("assay_well")
    with op.batch_alter_table("assay_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assay_result_run_id"))
        batch_op.drop_index(batch_op.f("ix_assay_result_aliquot_id"))

    op.drop_table("assay_result")
    op.drop_table("assay_run")
    op.drop_table("analyte")
