"""Analytes, assay runs (a plate read or a laboratory's result sheet) and the results they
give, each linked to the exact aliquot it was measured on.

A run is kept from its preview on, with the file it came from: an accepted run wrote its
results in the transaction that accepted it; a rejected one keeps its reason. The file's
SHA-256 is unique, so the same file cannot be imported twice.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biobank.auth.models import User
from biobank.db import enum_check, utcnow
from biobank.extensions import db
from biobank.samples.models import Aliquot

ANALYTE_KINDS = ("numeric", "qualitative")
RUN_KINDS = ("plate", "sheet")
RUN_STATUSES = ("preview", "accepted", "rejected")
RESULT_FLAGS = ("<LLOQ", ">ULOQ")
WELL_ROLES = ("standard", "blank", "control", "sample")
# Why a result is not the reportable one (biobank/assays/reportable.py); "" when it is.
SUPERSEDED_REASONS = ("", "requested", "dilution", "in_range", "latest", "chosen")


class Analyte(db.Model):
    """What is measured, as data: its canonical unit, or its allowed values."""

    __tablename__ = "analyte"
    __table_args__ = (enum_check("kind", ANALYTE_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(16))
    unit: Mapped[str] = mapped_column(sa.String(16), default="")
    # Canonical JSON lists: the values of a qualitative analyte, the names labs use for it.
    allowed_values: Mapped[str] = mapped_column(sa.Text, default="[]")
    aliases: Mapped[str] = mapped_column(sa.Text, default="[]")
    # How many significant digits a value is written with (pages, export): an ELISA gives
    # 3 or 4, never the 16 of a float.
    significant_digits: Mapped[int] = mapped_column(default=4, server_default=sa.text("4"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def run_code(run_id: int) -> str:
    """How a run is named to people: "A00042"."""
    return f"A{run_id:05d}"


class AssayRun(db.Model):
    __tablename__ = "assay_run"
    __table_args__ = (
        enum_check("kind", RUN_KINDS),
        enum_check("status", RUN_STATUSES),
        sa.CheckConstraint("(status = 'rejected') = (reason <> '')", "rejected_with_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    analyte_id: Mapped[int | None] = mapped_column(sa.ForeignKey("analyte.id"))
    file_name: Mapped[str] = mapped_column(sa.String(255))
    file_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    plate_map: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    instrument: Mapped[str] = mapped_column(sa.String(100), default="")
    kit_lot: Mapped[str] = mapped_column(sa.String(100), default="")
    # The day the plate was read: from the reader file's own record when it has one,
    # else as the person importing said; a result sheet's rows carry their own dates.
    measured_on: Mapped[date | None]
    # The options the preview was computed with, and the preview itself (canonical JSON):
    # what the user saw is what an acceptance writes.
    options: Mapped[str] = mapped_column(sa.Text, default="{}")
    preview: Mapped[str] = mapped_column(sa.Text, default="{}")
    problems: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(sa.String(16), default="preview")
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    # Why this run measures again what an earlier run measured ("diluted repeat", "control
    # failed"), said at import: such a requested re-assay supersedes (reportable.py).
    reassay_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    analyte: Mapped[Analyte | None] = relationship()
    created_by = relationship(User, foreign_keys=[created_by_id])
    decided_by = relationship(User, foreign_keys=[decided_by_id])

    @property
    def code(self) -> str:
        return run_code(self.id)


class Result(db.Model):
    """One measured value of one aliquot. Numeric values are in the analyte's canonical
    unit; a value outside the calibrated range carries its flag and limit, never a guess."""

    __tablename__ = "assay_result"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "aliquot_id", "analyte_id"),
        enum_check("flag", RESULT_FLAGS),
        sa.CheckConstraint("comparator IN ('<', '>')", "comparator_valid"),
        enum_check("superseded_reason", SUPERSEDED_REASONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("assay_run.id"), index=True)
    aliquot_id: Mapped[int] = mapped_column(sa.ForeignKey("aliquot.id"), index=True)
    analyte_id: Mapped[int] = mapped_column(sa.ForeignKey("analyte.id"))
    value: Mapped[float | None] = mapped_column(sa.Float)
    unit: Mapped[str] = mapped_column(sa.String(16), default="")
    comparator: Mapped[str | None] = mapped_column(sa.String(1))
    flag: Mapped[str | None] = mapped_column(sa.String(8))
    limit: Mapped[float | None] = mapped_column(sa.Float)
    text: Mapped[str | None] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    dilution: Mapped[float] = mapped_column(sa.Float, default=1.0)
    cv_pct: Mapped[float | None] = mapped_column(sa.Float)
    method: Mapped[str] = mapped_column(sa.String(100), default="")
    measured_on: Mapped[date | None]
    source: Mapped[str] = mapped_column(sa.String(100), default="")  # "wells A3, A4", "row 12"
    # Of the accepted results of one participant's visit, analyte and sample type, one is
    # reportable; the others stay, with the run whose value superseded them and the rule
    # that decided (biobank/assays/reportable.py).
    reportable: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    superseded_by_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("assay_run.id"))
    superseded_reason: Mapped[str] = mapped_column(sa.String(16), default="", server_default="")

    run: Mapped[AssayRun] = relationship(foreign_keys=[run_id])
    superseded_by: Mapped[AssayRun | None] = relationship(foreign_keys=[superseded_by_run_id])
    analyte: Mapped[Analyte] = relationship()
    aliquot: Mapped[Aliquot] = relationship()


class Well(db.Model):
    """A well of an accepted plate: what it held and what the reader gave."""

    __tablename__ = "assay_well"
    __table_args__ = (sa.UniqueConstraint("run_id", "position"), enum_check("role", WELL_ROLES))

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("assay_run.id"))
    position: Mapped[str] = mapped_column(sa.String(3))
    role: Mapped[str] = mapped_column(sa.String(16))
    content: Mapped[str] = mapped_column(sa.String(40))
    aliquot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("aliquot.id"))
    dilution: Mapped[float] = mapped_column(sa.Float, default=1.0)
    response: Mapped[float | None] = mapped_column(sa.Float)  # corrected, blank subtracted
    raw: Mapped[str] = mapped_column(sa.String(40), default="")
