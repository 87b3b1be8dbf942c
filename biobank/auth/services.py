"""Accounts, passwords and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from werkzeug.security import check_password_hash, generate_password_hash

from biobank.auth.models import ApiToken, Principal, User
from biobank.auth.roles import Role
from biobank.db import utcnow
from biobank.errors import Conflict, Invalid, NotFound
from biobank.extensions import db
from biobank.sites.models import Site

# scrypt is memory-hard: a stolen hash table is expensive to attack on GPUs.
PASSWORD_METHOD = "scrypt"
MIN_PASSWORD_LENGTH = 10
# A hash to compare against when the user does not exist, so that a login attempt
# takes as long for an unknown name as for a wrong password.
_DUMMY_HASH = generate_password_hash("not a password", method=PASSWORD_METHOD)
# Simple on purpose: one @, a dot in the domain, nothing that would split a list of
# recipients. Whether the mailbox exists only the mail server can tell.
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+$")
EMAIL_MAX = 200


def create_user(
    username: str,
    role: str,
    password: str,
    *,
    site_code: str | None = None,
    email: str | None = None,
    actor=None,
) -> User:
    """Create an account. The password is stored only as an scrypt hash; ``email``, if
    given, is where the account's notifications are sent."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise Invalid(_l("A user name of 1 to 64 characters is required."), fields={"username": ""})
    if role not in {r.value for r in Role}:
        roles = ", ".join(r.value for r in Role)
        raise Invalid(
            _l("Unknown role %(role)s (one of: %(roles)s).", role=role, roles=roles),
            fields={"role": role},
        )
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise Invalid(
            _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
            fields={"password": ""},
        )
    email = (email or "").strip() or None
    if email is not None and (len(email) > EMAIL_MAX or not _EMAIL.match(email)):
        raise Invalid(
            _l(
                "%(email)s is not an e-mail address: write it as name@hospital.fr, or leave "
                "the field empty.",
                email=email,
            ),
            fields={"email": email},
        )
    if db.session.execute(db.select(User.id).where(User.username == username)).first():
        raise Conflict(_l("User %(name)s already exists.", name=username), fields={"username": ""})
    site_id = None
    if site_code:
        site = db.session.execute(db.select(Site).where(Site.code == site_code)).scalar()
        if site is None:
            raise NotFound(_l("No site with code %(code)s.", code=site_code), fields={"site": ""})
        site_id = site.id
    user = User(
        username=username,
        role=role,
        site_id=site_id,
        email=email,
        password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = db.session.execute(db.select(User).where(User.username == username)).scalar()
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def get_user(username: str) -> User:
    user = db.session.execute(db.select(User).where(User.username == username)).scalar()
    if user is None:
        raise NotFound(_l("No user named %(name)s.", name=username))
    return user


def list_users() -> list[User]:
    return db.session.execute(db.select(User).order_by(User.username)).scalars().all()


def users_with_role(*roles: str) -> list[User]:
    """The active accounts having one of ``roles``, by name: whom to tell, e.g. the
    managers when a request is submitted."""
    query = (
        db.select(User).where(User.role.in_(roles), User.active.is_(True)).order_by(User.username)
    )
    return db.session.execute(query).scalars().all()


def set_active(username: str, active: bool, *, actor) -> User:
    """Switch an account off (or on again); its tokens stop working with it."""
    user = get_user(username)
    if not active and actor is not None and user.id == actor.id:
        raise Invalid(_l("You cannot switch off your own account."))
    user.active = active
    db.session.flush()
    return user


def set_password(username: str, password: str, *, actor=None) -> User:
    user = get_user(username)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise Invalid(
            _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
            fields={"password": ""},
        )
    user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
    db.session.flush()
    return user


def set_locale(user_id: int, locale: str) -> None:
    """Remember the language the user chose, for the next login."""
    db.session.execute(sa.update(User).where(User.id == user_id).values(locale=locale))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(username: str, *, actor=None) -> str:
    """A new 256-bit bearer token for ``username``; only its SHA-256 is kept, so it is
    shown once, now."""
    user = get_user(username)
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_sha256=_token_digest(token)))
    db.session.flush()
    return token


# Built once: every request runs one of these, and building a statement costs more
# Python than the indexed lookup itself.
_PRINCIPAL = sa.select(
    User.id,
    User.username,
    User.role,
    User.site_id,
    Site.code,
    Site.timezone,
    User.locale,
    User.active,
).outerjoin(Site, Site.id == User.site_id)
_PRINCIPAL_BY_ID = _PRINCIPAL.where(User.id == sa.bindparam("user_id"))
_PRINCIPAL_BY_TOKEN = _PRINCIPAL.join(ApiToken, ApiToken.user_id == User.id).where(
    ApiToken.token_sha256 == sa.bindparam("digest"), ApiToken.revoked_at.is_(None)
)


def _active_principal(row) -> Principal | None:
    principal = Principal(*row) if row is not None else None
    return principal if principal is not None and principal.active else None


def _read(statement, params):
    # Column rows through the session's connection (same transaction), without the ORM's
    # per-query machinery: these run on every request.
    return db.session.connection().execute(statement, params).first()


def principal(user_id: int) -> Principal | None:
    """The active account with this id, as a request's principal."""
    return _active_principal(_read(_PRINCIPAL_BY_ID, {"user_id": user_id}))


def principal_for_token(token: str) -> Principal | None:
    """The active account holding this unrevoked token: one indexed lookup, no slow hash."""
    return _active_principal(_read(_PRINCIPAL_BY_TOKEN, {"digest": _token_digest(token)}))


def revoke_tokens(username: str, *, actor=None) -> int:
    user = get_user(username)
    result = db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount
