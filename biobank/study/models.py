"""The trial protocol (versioned by content), participants and their visits.

No column here, nor anywhere in the schema, holds a name, a birth date or any other
direct identifier: a participant is known by a pseudonymised study code only.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biobank.db import enum_check, utcnow
from biobank.extensions import db
from biobank.sites.models import Site

DISEASE_STATUSES = ("de_novo", "relapsed", "refractory")
CONSENT_STATUSES = ("given", "withdrawn")
# Why a participant left the study (not a consent withdrawal: banked samples stay usable).
LEAVING_REASONS = ("progression", "toxicity", "death", "lost_to_follow_up", "other")


class Protocol(db.Model):
    """One loaded version of a study's protocol file. A new content is a new row, so
    the visits registered under an earlier version keep pointing at what applied then."""

    __tablename__ = "protocol"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_code: Mapped[str] = mapped_column(sa.String(32), index=True)
    version: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.String(300))
    sponsor: Mapped[str] = mapped_column(sa.String(200))
    content_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source: Mapped[str] = mapped_column(sa.Text)
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    arms: Mapped[list[Arm]] = relationship(order_by="Arm.code", back_populates="protocol")
    tube_types: Mapped[list[TubeType]] = relationship(order_by="TubeType.id")  # file order
    visit_definitions: Mapped[list[VisitDefinition]] = relationship(
        order_by="VisitDefinition.order", back_populates="protocol"
    )


visit_arm = sa.Table(
    "visit_definition_arm",
    db.metadata,
    sa.Column("visit_definition_id", sa.ForeignKey("visit_definition.id"), primary_key=True),
    sa.Column("arm_id", sa.ForeignKey("arm.id"), primary_key=True),
)


class Arm(db.Model):
    __tablename__ = "arm"
    __table_args__ = (sa.UniqueConstraint("protocol_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(sa.ForeignKey("protocol.id"))
    code: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.Text, default="")

    protocol: Mapped[Protocol] = relationship(back_populates="arms")


class TubeType(db.Model):
    """A primary tube type and what it becomes: SST gives serum, EDTA gives plasma."""

    __tablename__ = "tube_type"
    __table_args__ = (sa.UniqueConstraint("protocol_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(sa.ForeignKey("protocol.id"))
    code: Mapped[str] = mapped_column(sa.String(16))
    label: Mapped[str] = mapped_column(sa.String(200))
    container: Mapped[str] = mapped_column(sa.String(8))  # SPREC primary container
    sample_type: Mapped[str] = mapped_column(sa.String(8))  # SPREC type of sample


class VisitDefinition(db.Model):
    __tablename__ = "visit_definition"
    __table_args__ = (
        sa.UniqueConstraint("protocol_id", "code"),
        sa.CheckConstraint("window_before_days >= 0 AND window_after_days >= 0", "window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(sa.ForeignKey("protocol.id"))
    code: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(100))
    nominal_day: Mapped[int]
    window_before_days: Mapped[int]
    window_after_days: Mapped[int]
    order: Mapped[int]

    protocol: Mapped[Protocol] = relationship(back_populates="visit_definitions")
    arms: Mapped[list[Arm]] = relationship(secondary=visit_arm, order_by="Arm.code")
    sample_plans: Mapped[list[SamplePlan]] = relationship(order_by="SamplePlan.id")

    def applies_to(self, arm_code: str) -> bool:
        return any(arm.code == arm_code for arm in self.arms)


class SamplePlan(db.Model):
    """How many aliquots of what volume one primary tube of a visit yields."""

    __tablename__ = "sample_plan"
    __table_args__ = (
        sa.UniqueConstraint("visit_definition_id", "tube_type"),
        sa.CheckConstraint("aliquots > 0 AND volume_ul > 0", "positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_definition_id: Mapped[int] = mapped_column(sa.ForeignKey("visit_definition.id"))
    tube_type: Mapped[str] = mapped_column(sa.String(16))
    aliquots: Mapped[int]
    volume_ul: Mapped[int]


class Participant(db.Model):
    __tablename__ = "participant"
    __table_args__ = (
        enum_check("disease_status", DISEASE_STATUSES),
        enum_check("consent_status", CONSENT_STATUSES),
        sa.CheckConstraint(
            "consent_status = 'given' OR consent_withdrawn_on IS NOT NULL", "withdrawal_dated"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_code: Mapped[str] = mapped_column(sa.String(32))
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("site.id"), index=True)
    arm_code: Mapped[str] = mapped_column(sa.String(16))
    disease_status: Mapped[str] = mapped_column(sa.String(16))
    included_on: Mapped[date]
    consent_status: Mapped[str] = mapped_column(sa.String(16), default="given")
    consent_given_on: Mapped[date]
    consent_withdrawn_on: Mapped[date | None]
    # Leaving the study: visits after left_on are no longer expected. The reason is one of
    # LEAVING_REASONS, checked by the service (a CHECK would mean copying this table, to
    # which many rows point, on SQLite).
    left_on: Mapped[date | None]
    left_reason: Mapped[str | None] = mapped_column(sa.String(32))
    left_note: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    left_recorded_at: Mapped[datetime | None]
    left_recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    site: Mapped[Site] = relationship()
    visits: Mapped[list[Visit]] = relationship(
        back_populates="participant", order_by="Visit.collected_on"
    )


class Visit(db.Model):
    __tablename__ = "visit"
    __table_args__ = (sa.UniqueConstraint("participant_id", "visit_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(sa.ForeignKey("participant.id"))
    visit_code: Mapped[str] = mapped_column(sa.String(16), index=True)  # requests select by it
    # The protocol version in force when the visit was registered.
    visit_definition_id: Mapped[int] = mapped_column(sa.ForeignKey("visit_definition.id"))
    collected_on: Mapped[date]
    study_day: Mapped[int]
    out_of_window: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    participant: Mapped[Participant] = relationship(back_populates="visits")
    definition: Mapped[VisitDefinition] = relationship()
