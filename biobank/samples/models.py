"""Specimens (primary tubes) and the aliquots made from them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biobank.custody.models import CustodyChained, CustodyEvent
from biobank.db import enum_check, utcnow
from biobank.extensions import db
from biobank.study.models import Visit

ALIQUOT_STATUSES = (
    "registered",
    "in_storage",
    "checked_out",
    "shipped",
    "received",
    "consumed",
    "destroyed",
    "lost",
    # Not found at the receipt of its shipment; FOUND later brings it back.
    "missing",
)
TEMPERATURE_CLASSES = ("RT", "2-10")
# Why a primary tube of a registered visit was not drawn.
NOT_COLLECTED_REASONS = ("refused", "failed_draw", "broken", "forgotten", "other")


class Specimen(db.Model):
    """The primary tube of a visit and its pre-analytical record."""

    __tablename__ = "specimen"
    __table_args__ = (
        sa.UniqueConstraint("visit_id", "tube_type"),
        enum_check("precentrifugation_temperature", TEMPERATURE_CLASSES),
        enum_check("postcentrifugation_temperature", TEMPERATURE_CLASSES),
        sa.CheckConstraint("spin_force_g > 0 AND spin_minutes > 0", "spin_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(sa.ForeignKey("visit.id"))
    tube_type: Mapped[str] = mapped_column(sa.String(16))
    # The hospital's own barcode on the primary tube, when it has one.
    tube_barcode: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    container: Mapped[str] = mapped_column(sa.String(8))
    sample_type: Mapped[str] = mapped_column(sa.String(8))

    collected_at: Mapped[datetime]
    received_at: Mapped[datetime | None]
    # The temperatures and the centrifuge's settings are recorded at registration; they
    # are empty (not recorded) only for a tube imported from an inventory spreadsheet,
    # which gives the times but not these (biobank/inventory/services.py).
    precentrifugation_temperature: Mapped[str | None] = mapped_column(sa.String(8))
    spun_at: Mapped[datetime]
    spin_temperature_c: Mapped[float | None] = mapped_column(sa.Float)
    spin_force_g: Mapped[int | None]
    spin_minutes: Mapped[int | None]
    spin_braking: Mapped[bool] = mapped_column(default=True)
    second_spin_temperature_c: Mapped[float | None] = mapped_column(sa.Float)
    second_spin_force_g: Mapped[int | None]
    second_spin_minutes: Mapped[int | None]
    postcentrifugation_temperature: Mapped[str | None] = mapped_column(sa.String(8))
    frozen_at: Mapped[datetime]
    storage_temperature_c: Mapped[int] = mapped_column(default=-80)
    sprec_code: Mapped[str] = mapped_column(sa.String(64))
    # Raw values behind any "other" (Z/ZZZ) element of the code, as canonical JSON.
    sprec_others: Mapped[str] = mapped_column(sa.Text, default="{}")
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    # Where the pre-analytical record breaks the protocol's SOP limits, found at
    # registration (biobank/samples/deviations.py): canonical JSON, a list of
    # {"code": ..., values}; ``deviates`` is true when that list is not empty, for the
    # catalogue's and completeness's filters.
    deviations: Mapped[str] = mapped_column(sa.Text, default="[]", server_default="[]")
    deviates: Mapped[bool] = mapped_column(default=False, server_default=sa.false(), index=True)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    visit: Mapped[Visit] = relationship()
    aliquots: Mapped[list[Aliquot]] = relationship(
        back_populates="specimen", order_by="Aliquot.series_number"
    )


class UncollectedTube(db.Model):
    """A primary tube of a registered visit that was not drawn, and why: the visit's
    completeness counts it as not collected, not as missing."""

    __tablename__ = "uncollected_tube"
    __table_args__ = (
        sa.UniqueConstraint("visit_id", "tube_type"),
        enum_check("reason", NOT_COLLECTED_REASONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(sa.ForeignKey("visit.id"), index=True)
    tube_type: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    visit: Mapped[Visit] = relationship()


class InventoryImport(db.Model):
    """An inventory spreadsheet applied to the bank: the same file (by its SHA-256) is
    never applied twice."""

    __tablename__ = "inventory_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    rows: Mapped[int]
    aliquots: Mapped[int]
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))


class Aliquot(CustodyChained, db.Model):
    __tablename__ = "aliquot"
    __table_args__ = (
        enum_check("status", ALIQUOT_STATUSES),
        sa.CheckConstraint("volume_ul >= 0", "volume_not_negative"),
        sa.CheckConstraint("volume_ul <= initial_volume_ul", "volume_at_most_initial"),
        sa.CheckConstraint("initial_volume_ul > 0", "initial_volume_positive"),
        sa.CheckConstraint("freeze_thaw_count >= 0", "freeze_thaw_not_negative"),
        sa.CheckConstraint("custody_count >= 0", "custody_count_not_negative"),
        sa.CheckConstraint("series_number BETWEEN 1 AND series_total", "series"),
        # A unique index, not a constraint: SQLite adds no constraint to a table in place.
        sa.Index("uq_aliquot_legacy_barcode", "legacy_barcode", unique=True),
        # A scanned old label matches whatever its case (samples.services._by_old_label).
        sa.Index("ix_aliquot_legacy_barcode_lower", sa.func.lower(sa.text("legacy_barcode"))),
        # What the catalogue and request matching read: the aliquots in storage only.
        sa.Index(
            "ix_aliquot_stored_specimen",
            "specimen_id",
            "sample_type",
            "volume_ul",
            sqlite_where=sa.text("status = 'in_storage'"),
            postgresql_where=sa.text("status = 'in_storage'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    barcode: Mapped[str] = mapped_column(sa.String(12), unique=True)
    # The code on the tube's label before it came into this bank (an imported inventory):
    # a second identifier, unique across the bank, that every scan accepts.
    legacy_barcode: Mapped[str | None] = mapped_column(sa.String(64))
    specimen_id: Mapped[int] = mapped_column(sa.ForeignKey("specimen.id"), index=True)
    # Re-aliquoting keeps the lineage.
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("aliquot.id"))
    sample_type: Mapped[str] = mapped_column(sa.String(8))
    series_number: Mapped[int]
    series_total: Mapped[int]
    initial_volume_ul: Mapped[int]
    volume_ul: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default="registered")
    freeze_thaw_count: Mapped[int] = mapped_column(default=0)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)

    specimen: Mapped[Specimen] = relationship(back_populates="aliquots")
    parent: Mapped[Aliquot | None] = relationship(remote_side="Aliquot.id")
    custody_events: Mapped[list[CustodyEvent]] = relationship(
        order_by="CustodyEvent.seq", viewonly=True
    )

    @property
    def series_label(self) -> str:
        return f"{self.series_number}/{self.series_total}"
