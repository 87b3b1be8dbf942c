"""Study monitoring: a participant leaving the study, a primary tube recorded as not
drawn at a registered visit, and a specimen's deviations from the protocol's SOP limits.
Custody events are indexed by kind and time, for the home page's count of recent freezer
excursions.

``participant`` and ``specimen`` get plain columns in place (``recreate="never"``: rows
of other tables point to them, and a copy fails on a database in use). The leaving
reason is checked by the service, not by a CHECK, for that reason. Specimens registered
before this revision carry no deviation: their limits were not in the protocol then.

Revision ID: f1b3d5e7a9c2
Revises: e7a4c2d9b5f1
Create Date: 2026-12-07 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f1b3d5e7a9c2"
down_revision = "e7a4c2d9b5f1"
branch_labels = None
depends_on = None

REASONS = "'refused', 'failed_draw', 'broken', 'forgotten', 'other'"


def upgrade():
    op.create_index("ix_custody_event_kind_at", "custody_event", ["kind", "at"], unique=False)
    with op.batch_alter_table("participant", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("left_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("left_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("left_note", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("left_recorded_at", sa.DateTime(timezone=True), nullable=True)
        )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes a REFERENCES clause with a new column, but no constraint added later.
        op.execute(
            "ALTER TABLE participant ADD COLUMN left_recorded_by_id INTEGER "
            "REFERENCES user_account (id)"
        )
    else:
        op.add_column("participant", sa.Column("left_recorded_by_id", sa.Integer()))
        op.create_foreign_key(
            "fk_participant_left_recorded_by_id_user_account",
            "participant",
            "user_account",
            ["left_recorded_by_id"],
            ["id"],
        )
    with op.batch_alter_table("specimen", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("deviations", sa.Text(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("deviates", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_specimen_deviates"), ["deviates"], unique=False)
    op.create_table(
        "uncollected_tube",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("tube_type", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"reason IN ({REASONS})", name=op.f("ck_uncollected_tube_reason_valid")),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["user_account.id"],
            name=op.f("fk_uncollected_tube_recorded_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visit.id"], name=op.f("fk_uncollected_tube_visit_id_visit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uncollected_tube")),
        sa.UniqueConstraint(
            "visit_id", "tube_type", name=op.f("uq_uncollected_tube_visit_id_tube_type")
        ),
    )
    with op.batch_alter_table("uncollected_tube", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_uncollected_tube_visit_id"), ["visit_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("uncollected_tube", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uncollected_tube_visit_id"))
    op.drop_table("uncollected_tube")
    with op.batch_alter_table("specimen", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(batch_op.f("ix_specimen_deviates"))
        batch_op.drop_column("deviates")
        batch_op.drop_column("deviations")
    with op.batch_alter_table("participant", schema=None, recreate="never") as batch_op:
        if op.get_bind().dialect.name != "sqlite":  # SQLite drops it with its column
            batch_op.drop_constraint(
                "fk_participant_left_recorded_by_id_user_account", type_="foreignkey"
            )
        batch_op.drop_column("left_recorded_by_id")
        batch_op.drop_column("left_recorded_at")
        batch_op.drop_column("left_note")
        batch_op.drop_column("left_reason")
        batch_op.drop_column("left_on")
    op.drop_index("ix_custody_event_kind_at", table_name="custody_event")
