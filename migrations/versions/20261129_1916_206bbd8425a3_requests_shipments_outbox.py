"""Distribution: researchers' requests, reservations (one open per aliquot, by a partial
unique index), shipments and their items; the notification outbox; users' e-mail; indexes
for the catalogue (stored aliquots by specimen) and for matching visits by code.

Revision ID: 206bbd8425a3
Revises: 17fe9021177a
Create Date: 2026-11-29 19:16:05.298213

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "206bbd8425a3"
down_revision = "17fe9021177a"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_message_event"), ["event"], unique=False)

    op.create_table(
        "sample_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("aim", sa.Text(), nullable=False),
        sa.Column("receiving_lab", sa.String(length=200), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("contact_email", sa.String(length=200), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("researcher_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('submitted', 'under_review', 'approved', 'rejected', "
            "'being_prepared', 'shipped', 'received', 'cancelled')",
            name=op.f("ck_sample_request_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["researcher_id"],
            ["user_account.id"],
            name=op.f("fk_sample_request_researcher_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_request")),
    )
    with op.batch_alter_table("sample_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_request_researcher_id"), ["researcher_id"], unique=False
        )

    op.create_table(
        "request_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_name", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('submitted', 'under_review', 'approved', 'rejected', "
            "'being_prepared', 'shipped', 'received', 'cancelled')",
            name=op.f("ck_request_event_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["sample_request.id"],
            name=op.f("fk_request_event_request_id_sample_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_event")),
    )
    with op.batch_alter_table("request_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_event_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "shipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("origin_site_id", sa.Integer(), nullable=False),
        sa.Column("destination_site_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("box_rows", sa.Integer(), nullable=False),
        sa.Column("box_cols", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=False),
        sa.Column("tracking_number", sa.String(length=100), nullable=False),
        sa.Column("dry_ice", sa.Boolean(), nullable=False),
        sa.Column("dry_ice_kg", sa.Float(), nullable=True),
        sa.Column("logger_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_by_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_by_id", sa.Integer(), nullable=True),
        sa.Column("receipt_condition", sa.Text(), nullable=False),
        sa.Column("receipt_temperature_c", sa.Float(), nullable=True),
        sa.Column("unexpected", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('preparing', 'dispatched', 'received', 'cancelled')",
            name=op.f("ck_shipment_status_valid"),
        ),
        sa.CheckConstraint(
            "box_rows BETWEEN 1 AND 26 AND box_cols BETWEEN 1 AND 99", name=op.f("ck_shipment_grid")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_shipment_created_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["destination_site_id"], ["site.id"], name=op.f("fk_shipment_destination_site_id_site")
        ),
        sa.ForeignKeyConstraint(
            ["dispatched_by_id"],
            ["user_account.id"],
            name=op.f("fk_shipment_dispatched_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["origin_site_id"], ["site.id"], name=op.f("fk_shipment_origin_site_id_site")
        ),
        sa.ForeignKeyConstraint(
            ["received_by_id"],
            ["user_account.id"],
            name=op.f("fk_shipment_received_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["sample_request.id"],
            name=op.f("fk_shipment_request_id_sample_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment")),
    )
    with op.batch_alter_table("shipment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipment_request_id"), ["request_id"], unique=False)

    op.create_table(
        "reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("aliquot_id", sa.Integer(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reserved_by_id", sa.Integer(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("picked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("picked_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('released', 'shipped', 'consent_withdrawn', 'cancelled')",
            name=op.f("ck_reservation_outcome_valid"),
        ),
        sa.CheckConstraint(
            "(closed_at IS NULL) = (outcome IS NULL)",
            name=op.f("ck_reservation_closed_with_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["aliquot_id"], ["aliquot.id"], name=op.f("fk_reservation_aliquot_id_aliquot")
        ),
        sa.ForeignKeyConstraint(
            ["picked_by_id"],
            ["user_account.id"],
            name=op.f("fk_reservation_picked_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["sample_request.id"],
            name=op.f("fk_reservation_request_id_sample_request"),
        ),
        sa.ForeignKeyConstraint(
            ["reserved_by_id"],
            ["user_account.id"],
            name=op.f("fk_reservation_reserved_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation")),
    )
    with op.batch_alter_table("reservation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reservation_aliquot_id"), ["aliquot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reservation_request_id"), ["request_id"], unique=False)
        batch_op.create_index(
            "uq_reservation_open_aliquot",
            ["aliquot_id"],
            unique=True,
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )

    op.create_table(
        "shipment_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("aliquot_id", sa.Integer(), nullable=False),
        sa.Column("box_number", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("col", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('received', 'damaged', 'missing')",
            name=op.f("ck_shipment_item_outcome_valid"),
        ),
        sa.CheckConstraint(
            "box_number >= 1 AND row >= 1 AND col >= 1",
            name=op.f("ck_shipment_item_position_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["aliquot_id"], ["aliquot.id"], name=op.f("fk_shipment_item_aliquot_id_aliquot")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipment.id"], name=op.f("fk_shipment_item_shipment_id_shipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_item")),
        sa.UniqueConstraint(
            "shipment_id", "aliquot_id", name=op.f("uq_shipment_item_shipment_id_aliquot_id")
        ),
        sa.UniqueConstraint(
            "shipment_id",
            "box_number",
            "row",
            "col",
            name=op.f("uq_shipment_item_shipment_id_box_number_row_col"),
        ),
    )
    with op.batch_alter_table("shipment_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipment_item_aliquot_id"), ["aliquot_id"], unique=False
        )

    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=True))

    # Catalogue and request matching: aliquots in storage, grouped by specimen; visits by code.
    with op.batch_alter_table("aliquot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_aliquot_stored_specimen",
            ["specimen_id", "sample_type", "volume_ul"],
            unique=False,
            sqlite_where=sa.text("status = 'in_storage'"),
            postgresql_where=sa.text("status = 'in_storage'"),
        )
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_visit_code"), ["visit_code"], unique=False)


def downgrade():
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_visit_code"))
    with op.batch_alter_table("aliquot", schema=None) as batch_op:
        batch_op.drop_index("ix_aliquot_stored_specimen")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("email")

    with op.batch_alter_table("shipment_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipment_item_aliquot_id"))

    op.drop_table("shipment_item")
    with op.batch_alter_table("reservation", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_reservation_open_aliquot",
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_reservation_request_id"))
        batch_op.drop_index(batch_op.f("ix_reservation_aliquot_id"))

    op.drop_table("reservation")
    with op.batch_alter_table("shipment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipment_request_id"))

    op.drop_table("shipment")
    with op.batch_alter_table("request_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_event_request_id"))

    op.drop_table("request_event")
    with op.batch_alter_table("sample_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_request_researcher_id"))

    op.drop_table("sample_request")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_event"))

    op.drop_table("outbox_message")
