"""The outbox: writing notifications with the change they announce, delivering them."""

from __future__ import annotations

import smtplib

import pytest
import sqlalchemy as sa

from biobank.auth import services as auth
from biobank.auth.models import User
from biobank.config import from_environment
from biobank.errors import Invalid
from biobank.notifications import services as notifications
from biobank.notifications.models import OutboxMessage
from biobank.notifications.services import OutboxOnly, SmtpNotifier, notifier_from_config
from tests.conftest import PASSWORD


class Recording:
    """A notifier that keeps what it is given and fails for the subjects in ``fail``."""

    delivers = True

    def __init__(self, fail=()):
        self.sent = []
        self.fail = set(fail)

    def send(self, message):
        if message.subject in self.fail:
            raise ConnectionRefusedError(111, "Connection refused")
        self.sent.append(message)


def _committed_rows(db) -> int:
    """The outbox as another connection sees it: a plain engine of its own, whose reads
    neither wait for the test's transaction nor see it."""
    engine = sa.create_engine(db.engine.url)
    try:
        with engine.connect() as other:
            query = sa.select(sa.func.count()).select_from(OutboxMessage)
            return other.execute(query).scalar()
    finally:
        engine.dispose()


def test_notify_writes_a_row_in_the_callers_transaction_and_sends_nothing(db, monkeypatch):
    def no_smtp(*args, **kwargs):
        raise AssertionError("notify must not send anything")

    monkeypatch.setattr(smtplib, "SMTP", no_smtp)
    monkeypatch.setattr(smtplib, "SMTP_SSL", no_smtp)
    message = notifications.notify(
        "request.submitted", ["m@chu.fr"], "Request R-1 submitted", "Please review."
    )
    assert message.id is not None
    assert (message.sent_at, message.attempts, message.last_error) == (None, 0, "")
    assert _committed_rows(db) == 0  # not visible outside the transaction yet
    db.session.commit()
    assert _committed_rows(db) == 1


def test_a_rolled_back_change_announces_nothing(db, sites):
    auth.create_user("alice", "researcher", PASSWORD, email="alice@chu.fr")
    notifications.notify("request.submitted", ["alice@chu.fr"], "Submitted", "…")
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count()).select_from(OutboxMessage)).scalar() == 0
    assert db.session.execute(sa.select(User).where(User.username == "alice")).first() is None


def test_recipients_are_kept_once_each_without_blanks(db):
    message = notifications.notify(
        "request.approved",
        ["a@chu.fr", "", None, "  ", "A@chu.fr", "b@chu.fr, a@chu.fr", " c@chu.fr "],
        "Approved",
        "Body",
    )
    assert message.recipients == "a@chu.fr, b@chu.fr, c@chu.fr"


def test_a_subject_is_kept_on_one_line(db):
    message = notifications.notify("request.approved", ["a@chu.fr"], "Approved\r\nBcc: x@y", "")
    assert message.subject == "Approved Bcc: x@y"


@pytest.mark.parametrize("event", ["", "submitted", "Request.Submitted", "request." + "x" * 40])
def test_an_event_that_is_not_a_dotted_key_is_refused_naming_the_field(db, event):
    with pytest.raises(Invalid) as refused:
        notifications.notify(event, ["a@chu.fr"], "s", "b")
    assert "event" in refused.value.fields


def test_without_delivery_configured_every_pending_message_is_held(db):
    for n in range(3):
        notifications.notify("request.submitted", ["m@chu.fr"], f"S{n}", "b")
    report = notifications.deliver_pending(OutboxOnly())
    assert report == notifications.DeliveryReport(sent=0, failed=0, held=3)
    for message in db.session.execute(sa.select(OutboxMessage)).scalars():
        assert (message.sent_at, message.attempts, message.last_error) == (None, 0, "")


def test_messages_are_sent_oldest_first_up_to_the_limit(db):
    for n in range(3):
        notifications.notify("request.submitted", ["m@chu.fr"], f"S{n}", "b")
    notifier = Recording()
    assert notifications.deliver_pending(notifier, limit=2).sent == 2
    assert [m.subject for m in notifier.sent] == ["S0", "S1"]
    assert notifications.deliver_pending(notifier).sent == 1
    assert [m.subject for m in notifier.sent] == ["S0", "S1", "S2"]
    assert notifications.deliver_pending(notifier).sent == 0  # nothing is sent twice


def test_a_sent_message_is_dated_and_keeps_its_recipients(db):
    message = notifications.notify("request.approved", ["a@chu.fr", "b@chu.fr"], "S", "b")
    notifier = Recording()
    notifications.deliver_pending(notifier)
    assert notifier.sent[0].recipients == ("a@chu.fr", "b@chu.fr")
    assert message.sent_at is not None and message.sent_at.tzinfo is not None


def test_a_failure_is_recorded_and_the_next_message_is_still_tried(db):
    first = notifications.notify("request.approved", ["a@chu.fr"], "fails", "b")
    second = notifications.notify("request.approved", ["b@chu.fr"], "works", "b")
    notifier = Recording(fail={"fails"})
    report = notifications.deliver_pending(notifier)
    assert (report.sent, report.failed, report.held) == (1, 1, 0)
    assert first.sent_at is None and first.attempts == 1
    assert "Connection refused" in first.last_error
    assert second.sent_at is not None
    notifications.deliver_pending(notifier, now=first.next_attempt_at)
    assert first.attempts == 2  # tried again once its delay has passed


def test_a_message_nobody_can_receive_is_never_sent_and_says_why(db):
    message = notifications.notify("request.approved", [None, ""], "Nobody", "b")
    notifier = Recording()
    report = notifications.deliver_pending(notifier)
    assert report.failed == 1 and notifier.sent == []
    assert message.sent_at is None
    assert message.last_error == "no recipient has an e-mail address"
    assert notifications.deliver_pending(notifier).failed == 0  # reported once


def test_the_outbox_lists_newest_first_and_filters_the_pending(db):
    for n in range(3):
        notifications.notify("request.submitted", ["m@chu.fr"], f"S{n}", "b")
    notifications.deliver_pending(Recording(), limit=1)  # S0 sent
    page = notifications.list_outbox(limit=2)
    assert page.total == 3 and [m.subject for m in page.items] == ["S2", "S1"]
    pending = notifications.list_outbox(pending_only=True)
    assert pending.total == 2 and {m.subject for m in pending.items} == {"S1", "S2"}
    assert [m.subject for m in notifications.list_outbox(limit=2, offset=2).items] == ["S0"]


def test_the_default_notifier_keeps_messages_in_the_outbox():
    assert isinstance(notifier_from_config({}), OutboxOnly)
    assert isinstance(notifier_from_config({"NOTIFIER": "outbox"}), OutboxOnly)


def test_an_smtp_notifier_is_built_from_the_settings():
    notifier = notifier_from_config(
        {
            "NOTIFIER": "smtp",
            "MAIL_SERVER": "smtp.chu.fr",
            "MAIL_PORT": "587",
            "MAIL_SENDER": "biobank@chu.fr",
            "MAIL_USERNAME": "bank",
            "MAIL_PASSWORD": "secret",
            "MAIL_STARTTLS": True,
            "MAIL_TIMEOUT": 3,
        }
    )
    assert isinstance(notifier, SmtpNotifier)
    assert (notifier.host, notifier.port, notifier.sender) == ("smtp.chu.fr", 587, "biobank@chu.fr")
    assert (notifier.username, notifier.starttls, notifier.ssl, notifier.timeout) == (
        "bank",
        True,
        False,
        3,
    )
    assert "secret" not in repr(notifier)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"NOTIFIER": "smtp", "MAIL_SENDER": "b@chu.fr"}, "MAIL_SERVER"),
        ({"NOTIFIER": "smtp", "MAIL_SERVER": "smtp.chu.fr"}, "MAIL_SENDER"),
        ({"NOTIFIER": "pigeon"}, "NOTIFIER"),
        (
            {"NOTIFIER": "smtp", "MAIL_SERVER": "s", "MAIL_SENDER": "b@c.fr", "MAIL_PORT": "x"},
            "MAIL_PORT",
        ),
        (
            {
                "NOTIFIER": "smtp",
                "MAIL_SERVER": "s",
                "MAIL_SENDER": "b@c.fr",
                "MAIL_SSL": True,
                "MAIL_STARTTLS": True,
            },
            "MAIL_SSL",
        ),
    ],
)
def test_a_misconfigured_notifier_is_refused_naming_the_setting(settings, named):
    with pytest.raises(Invalid) as refused:
        notifier_from_config(settings)
    assert named in refused.value.fields
    assert named in str(refused.value.message)


def test_mail_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("NOTIFIER", "smtp")
    monkeypatch.setenv("MAIL_SERVER", "smtp.chu.fr")
    monkeypatch.setenv("MAIL_PORT", "2525")
    monkeypatch.setenv("MAIL_SENDER", "biobank@chu.fr")
    settings = from_environment()
    assert settings["NOTIFIER"] == "smtp" and settings["MAIL_SERVER"] == "smtp.chu.fr"
    assert settings["MAIL_PORT"] == 2525 and settings["MAIL_SENDER"] == "biobank@chu.fr"


def test_users_with_role_are_the_active_accounts_of_those_roles(db, sites):
    auth.create_user("m1", "manager", PASSWORD, email="m1@chu.fr")
    auth.create_user("a1", "admin", PASSWORD)
    auth.create_user("t1", "technician", PASSWORD)
    off = auth.create_user("m2", "manager", PASSWORD)
    off.active = False
    names = [u.username for u in auth.users_with_role("manager", "admin")]
    assert names == ["a1", "m1"]
    assert auth.users_with_role() == []
