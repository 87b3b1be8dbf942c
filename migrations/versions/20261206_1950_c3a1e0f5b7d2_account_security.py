"""Account security: the audit of account events, the first use of each API token, and a
per-account session generation that lets the server end every session of an account.

SQLite adds (and, from 3.35, drops) a plain column in place: ``recreate="never"`` keeps
batch mode from copying ``user_account`` and ``api_token``, which the rows of many tables
point to (a copy would fail on a database in use, as foreign keys cannot be switched off
inside the migration's transaction).

Revision ID: c3a1e0f5b7d2
Revises: a58ea3815ed2
Create Date: 2026-12-06 19:50:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c3a1e0f5b7d2"
down_revision = "a58ea3815ed2"
branch_labels = None
depends_on = None

KINDS = (
    "'account_created', 'role_changed', 'account_switched_off', 'account_switched_on', "
    "'password_changed', 'sessions_ended', 'token_issued', 'token_revoked', "
    "'token_first_used'"
)


def upgrade():
    with op.batch_alter_table("user_account", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column(
                "session_generation", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
    with op.batch_alter_table("api_token", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "account_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_account_event_kind_valid")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_account_event_actor_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["user_account.id"],
            name=op.f("fk_account_event_subject_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_token.id"], name=op.f("fk_account_event_token_id_api_token")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_event")),
    )
    with op.batch_alter_table("account_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_event_subject_id"), ["subject_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("account_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_event_subject_id"))
    op.drop_table("account_event")

    with op.batch_alter_table("api_token", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("first_used_at")
    with op.batch_alter_table("user_account", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("session_generation")
