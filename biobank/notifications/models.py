"""The outbox: every notification the bank sends is first a row here, written in the
transaction of the change it announces, so nothing is announced that did not happen."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from biobank.db import utcnow
from biobank.extensions import db


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What happened, as a stable key: "request.submitted", "request.approved", ...
    event: Mapped[str] = mapped_column(sa.String(40), index=True)
    # Comma-separated addresses; empty when nobody concerned has one.
    recipients: Mapped[str] = mapped_column(sa.Text)
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    # After a failed attempt, the earliest time the next one may be made (None: at the
    # next delivery); the delay grows with each failure (NOTIFY_RETRY_* settings).
    next_attempt_at: Mapped[datetime | None]
    # When delivery stopped trying: NOTIFY_MAX_ATTEMPTS failed, or nobody to address.
    # The message stays in the outbox, failed, for someone to read there.
    gave_up_at: Mapped[datetime | None]
