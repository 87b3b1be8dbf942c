"""The outbox: announcing a change, and delivering the announcements later.

``notify`` only adds a row to the outbox, in the caller's transaction: a change that is
rolled back announces nothing, and a change that is committed cannot lose its notice
because a mail server was down. ``deliver_pending`` sends the rows later (a button on
the outbox page, or ``flask notifications deliver`` from cron) through the configured
notifier. E-mail is not available on the hospital machines, so the default notifier,
``OutboxOnly``, keeps everything in the outbox for someone to read there.

Delivery is at least once: a message is marked sent when the unit of work that sent it
commits, so a crash between the SMTP exchange and the commit sends it again next time.
A message whose delivery failed is tried again after a delay that doubles with each
failure, up to a ceiling (``Retry``: the NOTIFY_RETRY_* settings); after
NOTIFY_MAX_ATTEMPTS attempts delivery gives up and the message stays in the outbox,
failed, counted on the managers' worklist.
"""

from __future__ import annotations

import re
import smtplib
import ssl as ssl_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import sqlalchemy as sa
from babel.dates import format_skeleton
from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from biobank.auth.models import User
from biobank.db import Page, utcnow
from biobank.errors import Forbidden, Invalid
from biobank.extensions import db
from biobank.notifications.models import OutboxMessage

EVENT_MAX = 40
SUBJECT_MAX = 300
ERROR_MAX = 500
NO_RECIPIENT = "no recipient has an e-mail address"
_EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


# --- writing to the outbox -----------------------------------------------------------------


def _recipient_list(recipients: Iterable[str | None]) -> list[str]:
    """Addresses in the order given, each once (compared without case), blanks dropped.

    The outbox keeps them comma-separated, so an item holding several addresses
    ("a@x.org, b@y.org") is split rather than stored as one broken address.
    """
    seen: set[str] = set()
    kept: list[str] = []
    for item in recipients or ():
        for address in re.split(r"[,;]", item or ""):
            address = address.strip()
            if address and address.casefold() not in seen:
                seen.add(address.casefold())
                kept.append(address)
    return kept


def notify(event: str, recipients: list[str], subject: str, body: str) -> OutboxMessage:
    """Put a notification in the outbox, in the caller's transaction; nothing is sent now.

    ``event`` is a stable key ("request.submitted", "shipment.dispatched"). Recipients
    without an address may be passed as None or "": the row is kept anyway, so that the
    outbox shows what nobody could be told.
    """
    event = (event or "").strip()
    if not _EVENT.match(event) or len(event) > EVENT_MAX:
        raise Invalid(
            _l(
                "Unknown kind of notification %(event)s: expected a dotted key such as "
                "request.approved, of at most %(n)d characters.",
                event=event,
                n=EVENT_MAX,
            ),
            fields={"event": event},
        )
    # A subject is one header line: a line break in it would be refused by the mail
    # library at delivery, long after the change it announces was committed.
    subject = " ".join((subject or "").split())
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    message = OutboxMessage(
        event=event,
        recipients=", ".join(_recipient_list(recipients)),
        subject=subject,
        body=body or "",
        attempts=0,
        last_error="",
    )
    db.session.add(message)
    db.session.flush()
    return message


@dataclass(frozen=True)
class Recipient:
    """An address and the language its owner reads (None: the bank's default language)."""

    address: str | None
    locale: str | None = None


def recipients(*users, locale: str | None = None) -> list[Recipient]:
    """The users' addresses, each with the language the user chose."""
    return [
        Recipient(u.email, getattr(u, "locale", None) or locale)
        for u in users
        if u is not None and getattr(u, "email", None)
    ]


def _language(locale: str | None) -> str:
    languages = current_app.config["LANGUAGES"]
    return locale if locale in languages else current_app.config["BABEL_DEFAULT_LOCALE"]


def notify_each(
    event: str, to: Iterable[Recipient], subject: LazyString, body: LazyString
) -> list[OutboxMessage]:
    """``notify`` once per language of the recipients, the subject and body (lazy strings,
    from ``_l``) written in that language: who triggered the change does not decide the
    language a researcher or a manager reads it in. An address named twice is told once,
    in the language it was first named with; an empty list still keeps one row, so the
    outbox shows what nobody could be told."""
    by_language: dict[str, list[str]] = {}
    seen: set[str] = set()
    for recipient in to:
        for address in _recipient_list([recipient.address]):
            if address.casefold() not in seen:
                seen.add(address.casefold())
                by_language.setdefault(_language(recipient.locale), []).append(address)
    if not by_language:
        by_language[_language(None)] = []
    messages = []
    for language, addresses in by_language.items():
        with force_locale(language):
            messages.append(notify(event, addresses, str(subject), str(body)))
    return messages


def when_utc(at) -> LazyString:
    """A time for a notification, in UTC, written the way the reader's language writes it
    (turned into text when the message is written, in the recipient's language)."""

    def text() -> str:
        locale = get_locale()
        day = format_skeleton("yMMMd", at, tzinfo=UTC, locale=locale)
        hour = format_skeleton("Hm", at, tzinfo=UTC, locale=locale)
        return locale.datetime_formats["medium"].format(hour, day) + " UTC"

    return LazyString(text)


# A message whose delivery was tried and failed (or that nobody could be addressed): it
# waits, unsent, with the error kept on it, to be tried again or given up.
FAILED = sa.and_(
    OutboxMessage.sent_at.is_(None),
    sa.or_(OutboxMessage.last_error != "", OutboxMessage.gave_up_at.is_not(None)),
)
# A message delivery gave up on: never tried again.
GAVE_UP = sa.and_(OutboxMessage.sent_at.is_(None), OutboxMessage.gave_up_at.is_not(None))


def outbox_in_reach(query, actor):
    """``query`` on the outbox limited to what the actor may read.

    The outbox is the whole bank's mail: a user bound to a centre sees only the messages
    addressed to an account of that centre (what the bank told its people), never those
    written for other centres, which name their tubes and participants."""
    if getattr(actor, "site_id", None) is not None:
        query = query.where(_addressed_to_centre(actor.site_id))
    return query


def list_outbox(
    *,
    limit: int = 100,
    offset: int = 0,
    pending_only: bool = False,
    failed_only: bool = False,
    actor=None,
) -> Page:
    """The outbox, newest first; ``pending_only`` keeps the messages not sent yet,
    ``failed_only`` those whose delivery failed (see ``outbox_in_reach``)."""
    query = outbox_in_reach(db.select(OutboxMessage), actor)
    if pending_only:
        query = query.where(OutboxMessage.sent_at.is_(None))
    if failed_only:
        query = query.where(FAILED)
    total = db.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    items = (
        db.session.execute(
            query.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    return Page(items, total)


def _addressed_to_centre(site_id: int):
    """Whether a message names the address of an account of the centre, asked of the
    database in the message's own query (one statement, whatever the number of accounts).
    The address is matched literally: its "%" and "_" are escaped, not wildcards."""
    text = sa.String()
    literal = sa.func.replace(
        sa.func.replace(sa.func.replace(User.email, "/", "//", type_=text), "%", "/%", type_=text),
        "_",
        "/_",
        type_=text,
    )
    pattern = sa.literal("%", text) + literal + sa.literal("%", text)
    return sa.exists(
        sa.select(User.id).where(
            User.site_id == site_id,
            User.email.is_not(None),
            OutboxMessage.recipients.like(pattern, escape="/"),
        )
    )


def check_may_deliver(actor) -> None:
    """Delivering sends every centre's pending mail: the central team's button."""
    if getattr(actor, "site_id", None) is not None:
        raise Forbidden(
            _l("Delivering the outbox sends every centre's mail: the central team does it."),
            code="outbox.central_only",
        )


# --- notifiers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """What a notifier sends; ``sender`` None means the notifier's configured sender."""

    recipients: tuple[str, ...]
    subject: str
    body: str
    sender: str | None = None


class Notifier(Protocol):
    """Delivers one message, or raises: the exception's text is kept on the message.

    ``delivers`` is False for a notifier that keeps the messages in the outbox.
    """

    delivers: bool

    def send(self, message: Mail) -> None: ...


class OutboxOnly:
    """Delivery not configured: the messages stay in the outbox, to be read there."""

    delivers = False

    def send(self, message: Mail) -> None:
        return None


class SmtpNotifier:
    """Sends each message through an SMTP server (smtplib), subject and body in UTF-8."""

    delivers = True

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        ssl: bool = False,
        timeout: float = 10,
    ):
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.ssl = ssl
        self.timeout = timeout

    def __repr__(self) -> str:  # never the password
        return f"<SmtpNotifier {self.host}:{self.port} from {self.sender}>"

    def email(self, message: Mail) -> EmailMessage:
        """The message as it goes on the wire."""
        email = EmailMessage()
        email["From"] = message.sender or self.sender
        email["To"] = ", ".join(message.recipients)
        email["Subject"] = message.subject
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = make_msgid(domain=(message.sender or self.sender).rpartition("@")[2])
        # RFC 3834: a machine wrote this, so out-of-office replies are not sent back.
        email["Auto-Submitted"] = "auto-generated"
        # Quoted-printable keeps accented text readable and 7-bit clean for any relay.
        email.set_content(message.body, charset="utf-8", cte="quoted-printable")
        return email

    def send(self, message: Mail) -> None:
        email = self.email(message)
        context = ssl_module.create_default_context()
        if self.ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls and not self.ssl:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(email, to_addrs=list(message.recipients))


_TRUE = {"1", "true", "yes", "on"}


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def _number(config: Mapping, name: str, default, kind):
    value = config.get(name)
    if value in (None, ""):
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise Invalid(
            _l(
                "The setting %(name)s must be a positive number, not %(value)s.",
                name=name,
                value=value,
            ),
            code="notifier.misconfigured",
            fields={name: str(value)},
        )
    return number


def _missing(name: str) -> Invalid:
    return Invalid(
        _l(
            "E-mail delivery is set to smtp but %(name)s is not set: set it in "
            "instance/config.py or the environment, or set NOTIFIER to outbox.",
            name=name,
        ),
        code="notifier.misconfigured",
        fields={name: ""},
    )


def notifier_from_config(config: Mapping) -> Notifier:
    """The notifier the settings ask for: NOTIFIER "outbox" (the default) or "smtp"."""
    kind = str(config.get("NOTIFIER") or "outbox").strip().lower()
    if kind == "outbox":
        return OutboxOnly()
    if kind != "smtp":
        raise Invalid(
            _l("Unknown NOTIFIER %(value)s (one of: outbox, smtp).", value=kind),
            code="notifier.misconfigured",
            fields={"NOTIFIER": kind},
        )
    host = (config.get("MAIL_SERVER") or "").strip()
    if not host:
        raise _missing("MAIL_SERVER")
    sender = (config.get("MAIL_SENDER") or "").strip()
    if not sender:
        raise _missing("MAIL_SENDER")
    starttls, use_ssl = _flag(config.get("MAIL_STARTTLS")), _flag(config.get("MAIL_SSL"))
    if starttls and use_ssl:
        raise Invalid(
            _l("Set MAIL_SSL or MAIL_STARTTLS, not both: SSL encrypts from the start."),
            code="notifier.misconfigured",
            fields={"MAIL_STARTTLS": "", "MAIL_SSL": ""},
        )
    return SmtpNotifier(
        host,
        _number(config, "MAIL_PORT", 465 if use_ssl else 25, int),
        sender,
        username=config.get("MAIL_USERNAME") or None,
        password=config.get("MAIL_PASSWORD") or None,
        starttls=starttls,
        ssl=use_ssl,
        timeout=_number(config, "MAIL_TIMEOUT", 10, float),
    )


# --- delivering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """How delivery retries a message that failed: at most ``max_attempts`` attempts in
    all; after the n-th failure the next attempt waits ``base_seconds`` × 2^(n−1), never
    more than ``max_seconds``."""

    max_attempts: int = 8
    base_seconds: float = 60
    max_seconds: float = 3600

    def delay(self, failures: int) -> timedelta:
        """The wait before the next attempt, after ``failures`` failed attempts."""
        doublings = min(max(failures - 1, 0), 64)  # 2**64 minutes is past any ceiling
        return timedelta(seconds=min(self.base_seconds * 2.0**doublings, self.max_seconds))


def retry_from_config(config: Mapping) -> Retry:
    """The retry rule the settings ask for (NOTIFY_MAX_ATTEMPTS, NOTIFY_RETRY_BASE_SECONDS,
    NOTIFY_RETRY_MAX_SECONDS); a value that is not a positive number is refused."""
    default = Retry()
    return Retry(
        max_attempts=_number(config, "NOTIFY_MAX_ATTEMPTS", default.max_attempts, int),
        base_seconds=_number(config, "NOTIFY_RETRY_BASE_SECONDS", default.base_seconds, float),
        max_seconds=_number(config, "NOTIFY_RETRY_MAX_SECONDS", default.max_seconds, float),
    )


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: int
    held: int
    # Of the failed: those whose last attempt it was (or that nobody could be addressed).
    gave_up: int = 0


def _short(err: Exception) -> str:
    text = " ".join(str(err).split()) or repr(err)
    text = f"{type(err).__name__}: {text}"
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def deliver_pending(
    notifier: Notifier,
    *,
    limit: int = 200,
    now: datetime | None = None,
    retry: Retry | None = None,
) -> DeliveryReport:
    """Send up to ``limit`` unsent messages that are due at ``now`` (by default the
    current time), oldest first, through ``notifier``.

    A failure is kept on its message (one more attempt, the error's text, the time of the
    next attempt by ``retry``, by default the settings' rule) and the next message is
    tried: one bad address must not hold back everyone else's. A message waiting for its
    next attempt is left alone until then; after its last attempt it is given up. A
    message nobody could be addressed is marked once, given up and counted as failed; it
    is never sent. With ``OutboxOnly`` nothing is sent and the pending messages are
    counted as held.
    """
    now = now or utcnow()
    retry = retry or retry_from_config(current_app.config)
    unaddressed = (
        db.session.execute(
            db.select(OutboxMessage).where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.recipients == "",
                OutboxMessage.gave_up_at.is_(None),
            )
        )
        .scalars()
        .all()
    )
    for message in unaddressed:
        message.last_error = NO_RECIPIENT
        message.gave_up_at = now
        message.next_attempt_at = None
    failed = gave_up = len(unaddressed)

    pending = (
        db.select(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.gave_up_at.is_(None),
            OutboxMessage.recipients != "",
            sa.or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .limit(limit)
    )
    if not notifier.delivers:
        held = db.session.execute(
            sa.select(sa.func.count()).select_from(pending.subquery())
        ).scalar()
        db.session.flush()
        return DeliveryReport(sent=0, failed=failed, held=held, gave_up=gave_up)

    # Two deliveries at once (cron and the button) must not send a message twice: the
    # second skips the rows the first holds (PostgreSQL; SQLite has one writer anyway).
    messages = db.session.execute(pending.with_for_update(skip_locked=True)).scalars().all()
    sent = 0
    for message in messages:
        mail = Mail(
            recipients=tuple(_recipient_list([message.recipients])),
            subject=message.subject,
            body=message.body,
        )
        try:
            notifier.send(mail)
        except Exception as err:  # any failure of one message: keep it, go on
            message.attempts = (message.attempts or 0) + 1
            message.last_error = _short(err)
            # The delay counts from the failure (a server that times out takes a while).
            failed_at = max(now, utcnow())
            if message.attempts >= retry.max_attempts:
                message.gave_up_at = failed_at
                message.next_attempt_at = None
                gave_up += 1
            else:
                message.next_attempt_at = failed_at + retry.delay(message.attempts)
            failed += 1
        else:
            message.sent_at = utcnow()
            message.attempts = (message.attempts or 0) + 1
            message.last_error = ""
            message.next_attempt_at = None
            sent += 1
    db.session.flush()
    return DeliveryReport(sent=sent, failed=failed, held=0, gave_up=gave_up)
