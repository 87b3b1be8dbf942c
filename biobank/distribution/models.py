"""Researchers' requests, the aliquots reserved for them, and shipments.

A reservation is a relation, not an aliquot status: an aliquot stays ``in_storage`` while
reserved. What keeps two requests from holding the same tube is the partial unique index
on open reservations, and what keeps a reserved tube from being checked out for anything
else is the custody chain: reserving appends a RESERVED event, so a check-out racing it
collides on the chain's (aliquot, seq) constraint.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from biobank.auth.models import User
from biobank.db import enum_check, utcnow
from biobank.extensions import db
from biobank.samples.models import Aliquot
from biobank.sites.models import Site

REQUEST_STATUSES = (
    "submitted",
    "under_review",
    "approved",
    "rejected",
    "being_prepared",
    "shipped",
    "received",
    "cancelled",
)
# How a reservation ended: released by a decision, or fulfilled by the shipment.
RESERVATION_OUTCOMES = ("released", "shipped", "consent_withdrawn", "cancelled")
SHIPMENT_STATUSES = ("preparing", "dispatched", "received", "cancelled")
ITEM_OUTCOMES = ("received", "damaged", "missing")


class SampleRequest(db.Model):
    """A researcher's request for aliquots. The criteria are canonical JSON, read and
    written by ``criteria.Criteria`` only."""

    __tablename__ = "sample_request"
    __table_args__ = (enum_check("status", REQUEST_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    aim: Mapped[str] = mapped_column(sa.Text)
    receiving_lab: Mapped[str] = mapped_column(sa.String(200))
    contact_name: Mapped[str] = mapped_column(sa.String(200))
    contact_email: Mapped[str] = mapped_column(sa.String(200))
    # The contact's address is typed by the researcher: the bank mails it only once a
    # manager has confirmed it (who, when), or anyone could have the bank's notices sent
    # anywhere. A new address is unconfirmed again (``_new_address_unconfirmed``).
    contact_confirmed_at: Mapped[datetime | None]
    contact_confirmed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    criteria: Mapped[str] = mapped_column(sa.Text)
    researcher_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="submitted")
    decision_reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    researcher: Mapped[User] = relationship(foreign_keys=[researcher_id])
    # Read only: the confirmation is written through its id and time, together.
    contact_confirmed_by: Mapped[User | None] = relationship(
        foreign_keys=[contact_confirmed_by_id], viewonly=True
    )
    events: Mapped[list[RequestEvent]] = relationship(
        order_by="RequestEvent.id", back_populates="request"
    )

    @property
    def code(self) -> str:
        return f"R{self.id:05d}"

    @property
    def contact_confirmed(self) -> bool:
        return self.contact_confirmed_at is not None

    @validates("contact_email")
    def _new_address_unconfirmed(self, _key, address):
        """Whatever changes the address, a confirmation was of the old one."""
        if address != self.contact_email:
            self.contact_confirmed_at = None
            self.contact_confirmed_by_id = None
        return address


class RequestEvent(db.Model):
    """One change of a request's status: the time-stamped history its researcher follows."""

    __tablename__ = "request_event"
    __table_args__ = (enum_check("status", REQUEST_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("sample_request.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_name: Mapped[str] = mapped_column(sa.String(64))
    note: Mapped[str] = mapped_column(sa.Text, default="")

    request: Mapped[SampleRequest] = relationship(back_populates="events")


class Reservation(db.Model):
    __tablename__ = "reservation"
    __table_args__ = (
        enum_check("outcome", RESERVATION_OUTCOMES),
        sa.CheckConstraint("(closed_at IS NULL) = (outcome IS NULL)", "closed_with_outcome"),
        # At most one open reservation per aliquot, whatever races for it.
        sa.Index(
            "uq_reservation_open_aliquot",
            "aliquot_id",
            unique=True,
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("sample_request.id"), index=True)
    aliquot_id: Mapped[int] = mapped_column(sa.ForeignKey("aliquot.id"), index=True)
    reserved_at: Mapped[datetime] = mapped_column(default=utcnow)
    reserved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    # Set when the manager handed out the last aliquot of a participant × visit × type.
    override_reason: Mapped[str | None] = mapped_column(sa.Text)
    picked_at: Mapped[datetime | None]
    picked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(24))

    request: Mapped[SampleRequest] = relationship()
    # Loaded with the reservations, in one query: releasing a request's thousands of
    # reservations writes an event on each tube.
    aliquot: Mapped[Aliquot] = relationship(lazy="selectin")


class Shipment(db.Model):
    """Tubes travelling together: to a laboratory for a request, or from a centre to the
    central biobank (a transfer, ``destination_site`` set)."""

    __tablename__ = "shipment"
    __table_args__ = (
        enum_check("status", SHIPMENT_STATUSES),
        sa.CheckConstraint("box_rows BETWEEN 1 AND 26 AND box_cols BETWEEN 1 AND 99", "grid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample_request.id"), index=True)
    origin_site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"))
    destination_site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("site.id"))
    recipient: Mapped[str] = mapped_column(sa.String(200))  # laboratory or site, in words
    contact: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="preparing")
    # The shipping boxes' grid: items are placed box by box in this grid.
    box_rows: Mapped[int] = mapped_column(default=9)
    box_cols: Mapped[int] = mapped_column(default=9)
    carrier: Mapped[str] = mapped_column(sa.String(100), default="")
    tracking_number: Mapped[str] = mapped_column(sa.String(100), default="")
    dry_ice: Mapped[bool] = mapped_column(default=True)
    dry_ice_kg: Mapped[float | None] = mapped_column(sa.Float)
    logger_id: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    dispatched_at: Mapped[datetime | None]
    dispatched_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    received_at: Mapped[datetime | None]
    received_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    receipt_condition: Mapped[str] = mapped_column(sa.Text, default="")
    receipt_temperature_c: Mapped[float | None] = mapped_column(sa.Float)
    # Tubes scanned at receipt that the manifest does not list, as canonical JSON.
    unexpected: Mapped[str] = mapped_column(sa.Text, default="[]")

    request: Mapped[SampleRequest | None] = relationship()
    origin_site: Mapped[Site] = relationship(foreign_keys=[origin_site_id])
    destination_site: Mapped[Site | None] = relationship(foreign_keys=[destination_site_id])
    items: Mapped[list[ShipmentItem]] = relationship(
        order_by="(ShipmentItem.box_number, ShipmentItem.row, ShipmentItem.col)",
        back_populates="shipment",
    )

    @property
    def code(self) -> str:
        return f"S{self.id:05d}"


class ShipmentItem(db.Model):
    __tablename__ = "shipment_item"
    __table_args__ = (
        sa.UniqueConstraint("shipment_id", "aliquot_id"),
        sa.UniqueConstraint("shipment_id", "box_number", "row", "col"),
        enum_check("outcome", ITEM_OUTCOMES),
        sa.CheckConstraint("box_number >= 1 AND row >= 1 AND col >= 1", "position_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(sa.ForeignKey("shipment.id"))
    aliquot_id: Mapped[int] = mapped_column(sa.ForeignKey("aliquot.id"), index=True)
    box_number: Mapped[int]
    row: Mapped[int]
    col: Mapped[int]
    # Receipt: what the receiving site found.
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    checked_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(sa.Text, default="")

    shipment: Mapped[Shipment] = relationship(back_populates="items")
    # Loaded with the items, in one query: receipt and packing look at every item's tube.
    aliquot: Mapped[Aliquot] = relationship(lazy="selectin")
