"""Notification delivery gives up: a message whose delivery failed waits a growing delay
before the next attempt (``next_attempt_at``) and, after the last attempt allowed, is
marked failed for good (``gave_up_at``). A message nobody could be addressed, already
marked with its error, is given up at once; a message that failed before this change
is tried again at the next delivery.

Revision ID: c5e7a9b1d3f4
Revises: b4d6f8a0c2e3
Create Date: 2026-12-07 13:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c5e7a9b1d3f4"
down_revision = "b4d6f8a0c2e3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE outbox_message SET gave_up_at = created_at "
        "WHERE sent_at IS NULL AND recipients = '' AND last_error != ''"
    )


def downgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("gave_up_at")
        batch_op.drop_column("next_attempt_at")
