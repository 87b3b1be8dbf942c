"""The append-only chain-of-custody log.

Each aliquot has its own hash chain; the aliquot row keeps the chain's head and length
(``CustodyChained``), updated in the same transaction as every event, so that deleting
the newest event is detected as surely as editing an old one. One chain per aliquot,
not one for the whole bank: a global chain would serialise every write in the bank.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biobank.extensions import db

GENESIS_HASH = "0" * 64


class CustodyChained:
    """Columns of a row that heads a custody chain (mixed into Aliquot)."""

    custody_head: Mapped[str] = mapped_column(sa.String(64), default=GENESIS_HASH)
    custody_count: Mapped[int] = mapped_column(default=0)


class CustodyEvent(db.Model):
    __tablename__ = "custody_event"
    __table_args__ = (
        sa.UniqueConstraint("aliquot_id", "seq"),
        sa.CheckConstraint("seq >= 1", "seq_positive"),
        # The home page counts the excursions of the last days: events of one kind, recent.
        sa.Index("ix_custody_event_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    aliquot_id: Mapped[int] = mapped_column(sa.ForeignKey("aliquot.id"))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    # The name as it was, so the hash does not depend on a later rename of the account.
    actor_name: Mapped[str] = mapped_column(sa.String(64))
    from_location: Mapped[str | None] = mapped_column(sa.String(200))
    to_location: Mapped[str | None] = mapped_column(sa.String(200))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    # Canonical JSON text, exactly as hashed.
    details: Mapped[str] = mapped_column(sa.Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))

    # By name: custody sits below samples and does not import it.
    aliquot = relationship("Aliquot")
