"""Users and their API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

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
    # A session is valid only while it carries the account's current generation (it is
    # part of the id Flask-Login keeps in the session cookie, see ``Principal.get_id``).
    # Logging out, a new password or switching the account off counts it up: every
    # session of the account ends, copies of its cookie included.
    session_generation: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

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
    session_generation: int

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        # What Flask-Login keeps in the session (and would put in a remember-me cookie):
        # the account and the generation of its sessions at login. The user loader
        # accepts it only while the generation is still the account's.
        return f"{self.id}:{self.session_generation}"

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
    # Set once, by the first request the token authenticates (AccountEvent records where
    # it came from): a token never used is one to revoke, a first use nobody expected is
    # a leak to look into.
    first_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class AccountEventKind(StrEnum):
    ACCOUNT_CREATED = "account_created"
    ROLE_CHANGED = "role_changed"
    ACCOUNT_SWITCHED_OFF = "account_switched_off"
    ACCOUNT_SWITCHED_ON = "account_switched_on"
    PASSWORD_CHANGED = "password_changed"
    SESSIONS_ENDED = "sessions_ended"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_FIRST_USED = "token_first_used"


class AccountEvent(db.Model):
    """The audit of accounts: who did what to which account, and when. Append-only;
    written by the auth services in the transaction of the change itself, except a
    token's first use, which happens on requests that write nothing else."""

    __tablename__ = "account_event"
    __table_args__ = (enum_check("kind", [k.value for k in AccountEventKind]),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(sa.String(24))
    # None: the system (the command line), not a signed-in account.
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_token.id"))
    # The client's address, for a token's first use.
    address: Mapped[str | None] = mapped_column(sa.String(64))
    # What changed, in words that need no translation, e.g. "technician PAR → admin PAR".
    detail: Mapped[str | None] = mapped_column(sa.String(200))

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    subject: Mapped[User] = relationship(foreign_keys=[subject_id])
