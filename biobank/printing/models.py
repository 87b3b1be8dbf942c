"""Label printers and the label templates an administrator adds."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from biobank.db import utcnow
from biobank.extensions import db


class Printer(db.Model):
    """A network thermal printer that takes raw ZPL on a TCP port (Zebra: 9100)."""

    __tablename__ = "printer"
    __table_args__ = (
        sa.CheckConstraint("port BETWEEN 1 AND 65535", "port_valid"),
        sa.CheckConstraint("dpi IN (203, 300, 600)", "dpi_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    port: Mapped[int] = mapped_column(default=9100)
    dpi: Mapped[int] = mapped_column(default=203)
    location: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LabelTemplate(db.Model):
    """A label or sheet layout added by an administrator, kept as its TOML text and
    validated by the labels library when saved and when used."""

    __tablename__ = "label_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
