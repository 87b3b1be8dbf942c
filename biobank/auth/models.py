"""Users and their API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from biobank.auth.roles import Permission, Role, role_may
from biobank.db import enum_check, utcnow
from biobank.extensions import db


class User(UserMixin, db.Model):
    __tablename__ = "user_account"
    __table_args__ = (enum_check("role", [r.value for r in Role]),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    # None: a user of the central biobank, who sees every centre.
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("site.id"))
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    # Where notifications (a request approved, a shipment on its way) are sent.
    email: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site = relationship("Site")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users at login
        return self.active

    def may(self, permission: Permission) -> bool:
        return role_may(self.role, permission)

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


@dataclass(frozen=True, eq=False)
class Principal(UserMixin):
    """Who is making a request: read once per request from one row, never written.

    Authentication yields this, not the ORM account, so that checking a caller costs one
    flat indexed query; services only need the id, the name, the role and the centre.
    """

    id: int
    username: str
    role: str
    site_id: int | None
    site_code: str | None
    site_timezone: str | None
    locale: str | None
    active: bool

    @property
    def is_active(self) -> bool:
        return self.active

    def may(self, permission: Permission) -> bool:
        return role_may(self.role, permission)


class ApiToken(db.Model):
    """A bearer token. Only the SHA-256 of the secret is kept, so a leak of the table
    gives no usable token, and checking one is a single indexed lookup."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
