"""Accounts, passwords, API tokens, sessions and their audit.

``actor`` is the account acting, or None for the system: the command line (which creates
the first administrator), the demo set-up. An administrator bound to a centre manages the
accounts of that centre only (``in_reach``: the others are "not found" for it) and can
neither create an account outside its centre nor move one out of it. A token acts, and
signs custody events, as its holder: it is issued to oneself, or by an administrator of
the central biobank (bound to no centre) to another account.

Every change to an account, and every token issued, revoked or used for the first time,
is an ``AccountEvent`` written in the transaction of the change.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import aliased
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from biobank.auth import throttle
from biobank.auth.models import AccountEvent, AccountEventKind, ApiToken, Principal, User
from biobank.auth.roles import Permission, Role
from biobank.db import utcnow
from biobank.errors import Conflict, Forbidden, Invalid, NotFound
from biobank.extensions import db
from biobank.sites.models import Site
from biobank.sites.services import in_reach

# scrypt is memory-hard: a stolen hash table is expensive to attack on GPUs.
PASSWORD_METHOD = "scrypt"
MIN_PASSWORD_LENGTH = 10
# zxcvbn's estimate grows with the length (about 60 ms at 128 characters): longer
# passwords are refused before it runs, so that a form cannot keep a worker busy.
MAX_PASSWORD_LENGTH = 128
# Words an attacker of this site tries first, whoever the user is.
_SITE_WORDS = ("biobank", "biobanque", "biobanks")
# zxcvbn keeps the user's words in a module-level dictionary while it estimates: two
# estimates at once in one process would see each other's words.
_ZXCVBN_LOCK = threading.Lock()
# A hash to compare against when the user does not exist, so that a login attempt
# takes as long for an unknown name as for a wrong password.
_DUMMY_HASH = generate_password_hash("not a password", method=PASSWORD_METHOD)
# Simple on purpose: one @, a dot in the domain, nothing that would split a list of
# recipients. Whether the mailbox exists only the mail server can tell.
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+$")
EMAIL_MAX = 200

# zxcvbn's feedback is English only: its strings, in the page's language.
_FEEDBACK = {
    "Use a few words, avoid common phrases.": _l("Use a few words, avoid common phrases."),
    "No need for symbols, digits, or uppercase letters.": _l(
        "No need for symbols, digits, or uppercase letters."
    ),
    "Add another word or two. Uncommon words are better.": _l(
        "Add another word or two. Uncommon words are better."
    ),
    "Straight rows of keys are easy to guess.": _l("Straight rows of keys are easy to guess."),
    "Short keyboard patterns are easy to guess.": _l("Short keyboard patterns are easy to guess."),
    "Use a longer keyboard pattern with more turns.": _l(
        "Use a longer keyboard pattern with more turns."
    ),
    'Repeats like "aaa" are easy to guess.': _l('Repeats like "aaa" are easy to guess.'),
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".': _l(
        'Repeats like "abcabcabc" are only slightly harder to guess than "abc".'
    ),
    "Avoid repeated words and characters.": _l("Avoid repeated words and characters."),
    'Sequences like "abc" or "6543" are easy to guess.': _l(
        'Sequences like "abc" or "6543" are easy to guess.'
    ),
    "Avoid sequences.": _l("Avoid sequences."),
    "Recent years are easy to guess.": _l("Recent years are easy to guess."),
    "Avoid recent years.": _l("Avoid recent years."),
    "Avoid years that are associated with you.": _l("Avoid years that are associated with you."),
    "Dates are often easy to guess.": _l("Dates are often easy to guess."),
    "Avoid dates and years that are associated with you.": _l(
        "Avoid dates and years that are associated with you."
    ),
    "This is a top-10 common password.": _l("This is a top-10 common password."),
    "This is a top-100 common password.": _l("This is a top-100 common password."),
    "This is a very common password.": _l("This is a very common password."),
    "This is similar to a commonly used password.": _l(
        "This is similar to a commonly used password."
    ),
    "A word by itself is easy to guess.": _l("A word by itself is easy to guess."),
    "Names and surnames by themselves are easy to guess.": _l(
        "Names and surnames by themselves are easy to guess."
    ),
    "Common names and surnames are easy to guess.": _l(
        "Common names and surnames are easy to guess."
    ),
    "Capitalization doesn't help very much.": _l("Capitalization doesn't help very much."),
    "All-uppercase is almost as easy to guess as all-lowercase.": _l(
        "All-uppercase is almost as easy to guess as all-lowercase."
    ),
    "Reversed words aren't much harder to guess.": _l(
        "Reversed words aren't much harder to guess."
    ),
    "Predictable substitutions like '@' instead of 'a' don't help very much.": _l(
        "Predictable substitutions like '@' instead of 'a' don't help very much."
    ),
}


# --- Passwords -------------------------------------------------------------------------


def check_password(password: str, *, user_inputs=()) -> None:
    """Refuse a password that is too short, too long, or too easy to guess.

    ``user_inputs`` are the words of this account (its name, its e-mail address) that an
    attacker would try first. The estimate is zxcvbn's: a score from 0 (among the most
    common passwords) to 4; PASSWORD_MIN_SCORE is the lowest accepted.
    """
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH),
            fields={"password": ""},
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(
            _l("The password must have at most %(n)d characters.", n=MAX_PASSWORD_LENGTH),
            fields={"password": ""},
        )
    words = [str(w).strip() for w in user_inputs if w and str(w).strip()]
    if any(password.strip().casefold() == w.casefold() for w in words):
        raise Invalid(
            _l("The password must not be the user name or the e-mail address."),
            fields={"password": ""},
        )
    # "nurse.lim@chu.fr" is tried as "nurse", "lim" and "chu" too.
    parts = [p for w in words for p in re.split(r"[^\w]+", w) if len(p) >= 3]
    with _ZXCVBN_LOCK:
        estimate = zxcvbn(
            password,
            user_inputs=[*words, *parts, *_SITE_WORDS],
            max_length=MAX_PASSWORD_LENGTH,
        )
    if estimate["score"] < current_app.config["PASSWORD_MIN_SCORE"]:
        raise Invalid(_too_easy(estimate["feedback"]), fields={"password": ""})


def _too_easy(feedback: dict):
    said = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
    said = [s for s in said if s]
    if not said:
        return _l(
            "This password is too easy to guess. A few unrelated, uncommon words make a strong one."
        )
    return _l(
        "This password is too easy to guess. %(advice)s",
        advice=LazyString(lambda: " ".join(str(_FEEDBACK.get(s, s)) for s in said)),
    )


def _hash(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


# --- Who may do what to which account -----------------------------------------------------


def _actor_id(actor) -> int | None:
    return None if actor is None else actor.id


def _administers(actor) -> None:
    """The system, or an administrator."""
    if actor is not None and not actor.may(Permission.ADMINISTER):
        raise Forbidden(_l("Your role does not allow this."))


def _centre_of(actor) -> int | None:
    return None if actor is None else getattr(actor, "site_id", None)


def _keep_in_centre(actor, site_id: int | None, site_code: str | None) -> None:
    """An administrator bound to a centre gives accounts that centre only: never none
    (which would see every centre) nor another."""
    centre = _centre_of(actor)
    if centre is not None and site_id != centre:
        raise Forbidden(
            _l(
                "An administrator of a centre manages the accounts of that centre only: "
                "choose your centre."
            ),
            fields={"site": site_code or ""},
        )


def _record(kind: AccountEventKind, subject_id: int, *, actor, token_id=None, detail=None):
    db.session.add(
        AccountEvent(
            kind=kind.value,
            actor_id=_actor_id(actor),
            subject_id=subject_id,
            token_id=token_id,
            detail=detail,
        )
    )


def _site_id(site_code: str | None) -> int | None:
    if not site_code:
        return None
    site = db.session.execute(db.select(Site).where(Site.code == site_code)).scalar()
    if site is None:
        raise NotFound(_l("No site with code %(code)s.", code=site_code), fields={"site": ""})
    return site.id


def _check_role(role: str) -> None:
    if role not in {r.value for r in Role}:
        roles = ", ".join(r.value for r in Role)
        raise Invalid(
            _l("Unknown role %(role)s (one of: %(roles)s).", role=role, roles=roles),
            fields={"role": role},
        )


def _access(role: str, site_code: str | None) -> str:
    # Written to the audit as is, in no language: "technician PAR", "admin" (no centre).
    return f"{role} {site_code}" if site_code else role


def _end_sessions(user_id: int) -> None:
    # One statement: two changes at once both count.
    db.session.execute(
        sa.update(User)
        .where(User.id == user_id)
        .values(session_generation=User.session_generation + 1)
    )


# --- Accounts ----------------------------------------------------------------------------


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
    _administers(actor)
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise Invalid(_l("A user name of 1 to 64 characters is required."), fields={"username": ""})
    _check_role(role)
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
    site_id = _site_id(site_code)
    _keep_in_centre(actor, site_id, site_code)
    check_password(password, user_inputs=(username, email))
    if db.session.execute(db.select(User.id).where(User.username == username)).first():
        raise Conflict(_l("User %(name)s already exists.", name=username), fields={"username": ""})
    user = User(
        username=username,
        role=role,
        site_id=site_id,
        email=email,
        password_hash=_hash(password),
    )
    db.session.add(user)
    db.session.flush()
    _record(AccountEventKind.ACCOUNT_CREATED, user.id, actor=actor, detail=_access(role, site_code))
    db.session.flush()
    return user


def authenticate(username: str, password: str, *, address: str | None = None) -> User | None:
    """The active user with these credentials, or None. Failures are counted per account
    and per client ``address``: past the limits, refused (``TooManyAttempts``) without
    checking the password (biobank/auth/throttle.py)."""
    user = db.session.execute(db.select(User).where(User.username == username)).scalar()

    def matches() -> bool:
        if user is None:
            check_password_hash(_DUMMY_HASH, password)  # as slow as for a real account
            return False
        return check_password_hash(user.password_hash, password) and user.active

    return user if throttle.verify(username, address, matches) else None


def get_user(username: str, *, actor=None) -> User:
    """The account named ``username``, if it is within the actor's reach: an account of
    another centre is not found, as if it did not exist."""
    query = in_reach(db.select(User).where(User.username == username), User.site_id, actor)
    user = db.session.execute(query).scalar()
    if user is None:
        raise NotFound(_l("No user named %(name)s.", name=username))
    return user


def list_users(*, actor=None) -> list[User]:
    """The accounts within the actor's reach, by name."""
    query = in_reach(db.select(User), User.site_id, actor).order_by(User.username)
    return db.session.execute(query).scalars().all()


def users_with_role(*roles: str) -> list[User]:
    """The active accounts having one of ``roles``, by name: whom to tell, e.g. the
    managers when a request is submitted."""
    query = (
        db.select(User).where(User.role.in_(roles), User.active.is_(True)).order_by(User.username)
    )
    return db.session.execute(query).scalars().all()


def set_access(username: str, *, role: str, site_code: str | None, actor) -> User:
    """Give an account another role or centre (``site_code`` None: the central biobank,
    which sees every centre)."""
    _administers(actor)
    user = get_user(username, actor=actor)
    if actor is not None and user.id == actor.id:
        raise Invalid(_l("You cannot change your own role or centre: ask another administrator."))
    _check_role(role)
    site_id = _site_id(site_code or None)
    _keep_in_centre(actor, site_id, site_code)
    if (user.role, user.site_id) == (role, site_id):
        return user
    before = _access(user.role, user.site.code if user.site else None)
    user.role = role
    user.site_id = site_id
    _record(
        AccountEventKind.ROLE_CHANGED,
        user.id,
        actor=actor,
        detail=f"{before} → {_access(role, site_code or None)}",
    )
    db.session.flush()
    return user


def set_active(username: str, active: bool, *, actor) -> User:
    """Switch an account off (or on again). Its tokens stop working with it, and its
    sessions end for good: switching it on again does not bring them back."""
    _administers(actor)
    user = get_user(username, actor=actor)
    if not active and actor is not None and user.id == actor.id:
        raise Invalid(_l("You cannot switch off your own account."))
    if user.active == active:
        return user
    user.active = active
    if not active:
        _end_sessions(user.id)
    kind = AccountEventKind.ACCOUNT_SWITCHED_ON if active else AccountEventKind.ACCOUNT_SWITCHED_OFF
    _record(kind, user.id, actor=actor)
    db.session.flush()
    return user


def set_password(username: str, password: str, *, actor=None, revoke_tokens: bool = False) -> User:
    """An administrator (or the command line) gives an account a new password: every
    session of the account ends, and its API tokens too if asked."""
    _administers(actor)
    user = get_user(username, actor=actor)
    return _replace_password(user, password, actor=actor, revoke_tokens=revoke_tokens)


def change_password(
    current_password: str,
    new_password: str,
    *,
    actor,
    revoke_tokens: bool = False,
    address: str | None = None,
) -> User:
    """The signed-in ``actor`` changes their own password. Every other session of the
    account ends (the caller keeps its own by storing the new generation); its API tokens
    too if asked. The current password is checked as a sign-in is (``throttle``): a
    stolen session cookie is no way to guess it faster."""
    user = db.session.get(User, actor.id)

    def matches() -> bool:
        return check_password_hash(user.password_hash, current_password or "")

    if not throttle.verify(user.username, address, matches):
        raise Invalid(_l("The current password is not right."), fields={"current_password": ""})
    return _replace_password(user, new_password, actor=actor, revoke_tokens=revoke_tokens)


def _replace_password(user: User, password: str, *, actor, revoke_tokens: bool) -> User:
    """A new password, once strong enough: every session of the account ends (audited),
    its API tokens too if asked."""
    check_password(password, user_inputs=(user.username, user.email))
    user.password_hash = _hash(password)
    _end_sessions(user.id)
    _record(AccountEventKind.PASSWORD_CHANGED, user.id, actor=actor)
    if revoke_tokens:
        _revoke_all(user.id, actor=actor)
    db.session.flush()
    return user


def end_sessions(*, actor) -> None:
    """Log out everywhere: every session of the actor's account ends, including copies
    of its cookie made before."""
    _end_sessions(actor.id)
    _record(AccountEventKind.SESSIONS_ENDED, actor.id, actor=actor)
    db.session.flush()


def set_locale(user_id: int, locale: str) -> None:
    """Remember the language the user chose, for the next login."""
    db.session.execute(sa.update(User).where(User.id == user_id).values(locale=locale))


# --- API tokens --------------------------------------------------------------------------


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(username: str, *, actor=None) -> str:
    """A new 256-bit bearer token for ``username``; only its SHA-256 is kept, so it is
    shown once, now. An account gets tokens for itself; only an administrator of the
    central biobank (or the command line) issues one to another account."""
    user = get_user(username, actor=actor)
    for_another = actor is not None and user.id != actor.id
    if for_another and (_centre_of(actor) is not None or not actor.may(Permission.ADMINISTER)):
        raise Forbidden(
            _l(
                "A token acts as its holder: only an administrator of the central biobank "
                "issues one to another account."
            )
        )
    token = secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_sha256=_token_digest(token))
    db.session.add(row)
    db.session.flush()
    _record(AccountEventKind.TOKEN_ISSUED, user.id, actor=actor, token_id=row.id)
    db.session.flush()
    return token


def revoke_tokens(username: str, *, actor=None) -> int:
    """Revoke every token of ``username``: the account itself, or an administrator who
    has it within reach."""
    user = get_user(username, actor=actor)
    if actor is not None and user.id != actor.id:
        _administers(actor)
    return _revoke_all(user.id, actor=actor)


def _revoke_all(user_id: int, *, actor) -> int:
    # RETURNING: the tokens this statement revoked, each audited once even when two
    # revocations race.
    revoked = (
        db.session.execute(
            sa.update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(ApiToken.id),
            execution_options={"synchronize_session": False},
        )
        .scalars()
        .all()
    )
    for token_id in sorted(revoked):
        _record(AccountEventKind.TOKEN_REVOKED, user_id, actor=actor, token_id=token_id)
    db.session.flush()
    return len(revoked)


def record_token_first_use(token_id: int, user_id: int, address: str | None) -> bool:
    """Record the first request a token authenticated: ``first_used_at`` and a
    TOKEN_FIRST_USED event with the client's address. True if this call recorded it.

    Token use happens on reads, which never write their request's transaction (a GET is
    read-only and never committed). This is not domain data but the security audit of
    the credential: it is written on a connection of its own, in a short transaction
    committed at once, whatever becomes of the request's. The UPDATE … WHERE
    first_used_at IS NULL lets exactly one of two simultaneous first uses record it.
    Called once the request's own transaction has ended (see ``access``), so that on
    SQLite it never waits for a write lock its own request holds."""
    tokens = ApiToken.__table__
    events = AccountEvent.__table__
    with db.engine.begin() as connection:
        touched = connection.execute(
            sa.update(tokens)
            .where(tokens.c.id == token_id, tokens.c.first_used_at.is_(None))
            .values(first_used_at=utcnow())
        ).rowcount
        if touched:
            connection.execute(
                sa.insert(events).values(
                    at=utcnow(),
                    kind=AccountEventKind.TOKEN_FIRST_USED.value,
                    actor_id=user_id,
                    subject_id=user_id,
                    token_id=token_id,
                    address=(address or None) and address[:64],
                )
            )
    return bool(touched)


# --- The audit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountEventRow:
    at: object
    kind: str
    actor: str | None  # None: the system (command line)
    subject: str
    token_id: int | None
    address: str | None
    detail: str | None


def recent_events(*, actor, username: str | None = None, limit: int = 50) -> list:
    """The latest account events, newest first, of the accounts within the actor's reach
    (of one account if ``username`` is given)."""
    subject = aliased(User)
    by = aliased(User)
    query = (
        db.select(
            AccountEvent.at,
            AccountEvent.kind,
            by.username,
            subject.username,
            AccountEvent.token_id,
            AccountEvent.address,
            AccountEvent.detail,
        )
        .join(subject, subject.id == AccountEvent.subject_id)
        .outerjoin(by, by.id == AccountEvent.actor_id)
        .order_by(AccountEvent.id.desc())
        .limit(limit)
    )
    if username is not None:
        query = query.where(subject.username == username)
    query = in_reach(query, subject.site_id, actor)
    return [AccountEventRow(*row) for row in db.session.execute(query)]


# --- Who is calling ----------------------------------------------------------------------

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
    User.session_generation,
).outerjoin(Site, Site.id == User.site_id)
_PRINCIPAL_BY_ID = _PRINCIPAL.where(User.id == sa.bindparam("user_id"))
_PRINCIPAL_BY_SESSION = _PRINCIPAL_BY_ID.where(
    User.session_generation == sa.bindparam("generation")
)
_PRINCIPAL_BY_TOKEN = (
    _PRINCIPAL.add_columns(ApiToken.id, ApiToken.first_used_at)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_sha256 == sa.bindparam("digest"), ApiToken.revoked_at.is_(None))
)
_PRINCIPAL_COLUMNS = 9


def _active_principal(row) -> Principal | None:
    principal = Principal(*row[:_PRINCIPAL_COLUMNS]) if row is not None else None
    return principal if principal is not None and principal.active else None


def _read(statement, params):
    # Column rows through the session's connection (same transaction), without the ORM's
    # per-query machinery: these run on every request.
    return db.session.connection().execute(statement, params).first()


def principal(user_id: int) -> Principal | None:
    """The active account with this id, as a request's principal."""
    return _active_principal(_read(_PRINCIPAL_BY_ID, {"user_id": user_id}))


def session_principal(user_id: int, generation: int) -> Principal | None:
    """The active account with this id, if its sessions are still of ``generation``:
    one indexed lookup, on every request made with a session."""
    row = _read(_PRINCIPAL_BY_SESSION, {"user_id": user_id, "generation": generation})
    return _active_principal(row)


@dataclass(frozen=True)
class TokenUse:
    principal: Principal
    token_id: int
    first_use: bool  # never used before this request


def authenticate_token(token: str) -> TokenUse | None:
    """The active account holding this unrevoked token, and whether this is the token's
    first use: one indexed lookup, no slow hash."""
    row = _read(_PRINCIPAL_BY_TOKEN, {"digest": _token_digest(token)})
    user = _active_principal(row)
    if user is None:
        return None
    token_id, first_used_at = row[_PRINCIPAL_COLUMNS:]
    return TokenUse(user, token_id, first_used_at is None)


def principal_for_token(token: str) -> Principal | None:
    """The active account holding this unrevoked token."""
    use = authenticate_token(token)
    return use.principal if use is not None else None
