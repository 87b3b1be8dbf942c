"""A site: a recruiting centre, or the central biobank."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from biobank.db import utcnow
from biobank.extensions import db


class Site(db.Model):
    """A recruiting centre; the central biobank is a site too."""

    __tablename__ = "site"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Europe/Paris")
    is_central: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def today(self, now: datetime | None = None) -> date:
        """The centre's date now (or at ``now``): at 23:30 UTC it is already tomorrow in
        Paris, and a day ends at midnight at the centre, not in UTC."""
        return today_in(self.timezone, now)


def today_in(timezone: str, now: datetime | None = None) -> date:
    """The date in a time zone (an IANA name) now, or at ``now``."""
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()
