"""Delivery that gives up: a failed message waits a growing, capped delay before its next
attempt, and after the last attempt allowed it is failed for good, shown on the worklist
and never tried again."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from biobank.db import utcnow
from biobank.errors import Invalid
from biobank.monitoring import worklists
from biobank.notifications import services as notifications
from biobank.notifications.services import Retry, retry_from_config


class Failing:
    """A notifier whose server never takes a message; counts what it was given."""

    delivers = True

    def __init__(self):
        self.tried = []

    def send(self, message):
        self.tried.append(message.subject)
        raise TimeoutError("timed out")


class Working:
    delivers = True

    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message.subject)


# Later than the test's own clock: the delays count from this time, not from the moment
# the test happens to run.
def _later():
    return utcnow() + timedelta(days=1)


def test_the_delay_doubles_from_the_base_and_stops_at_the_ceiling():
    retry = Retry(max_attempts=10, base_seconds=60, max_seconds=3600)
    delays = [retry.delay(n).total_seconds() for n in range(1, 10)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert Retry(max_attempts=200).delay(150).total_seconds() == 3600  # no overflow


def test_each_failure_puts_the_next_attempt_further_off_up_to_the_ceiling(db):
    message = notifications.notify("request.approved", ["a@chu.fr"], "S", "b")
    retry = Retry(max_attempts=8, base_seconds=60, max_seconds=600)
    notifier = Failing()
    now = _later()
    waits = []
    for attempt in range(1, 8):
        report = notifications.deliver_pending(notifier, now=now, retry=retry)
        assert (report.failed, report.gave_up) == (1, 0)
        assert message.attempts == attempt and message.gave_up_at is None
        waits.append((message.next_attempt_at - now).total_seconds())
        now = message.next_attempt_at
    assert waits == [60, 120, 240, 480, 600, 600, 600]
    assert len(notifier.tried) == 7


def test_a_message_whose_delay_has_not_passed_is_not_attempted(db):
    message = notifications.notify("request.approved", ["a@chu.fr"], "S", "b")
    retry = Retry(max_attempts=5, base_seconds=300, max_seconds=3600)
    notifier = Failing()
    now = _later()
    notifications.deliver_pending(notifier, now=now, retry=retry)
    due = message.next_attempt_at
    assert due == now + timedelta(seconds=300)

    report = notifications.deliver_pending(notifier, now=due - timedelta(seconds=1), retry=retry)
    assert report == notifications.DeliveryReport(sent=0, failed=0, held=0)
    assert notifier.tried == ["S"] and message.attempts == 1

    working = Working()
    report = notifications.deliver_pending(working, now=due, retry=retry)
    assert report.sent == 1 and working.sent == ["S"]
    assert message.sent_at is not None and message.next_attempt_at is None
    assert message.attempts == 2


def test_a_waiting_message_does_not_hold_back_the_others(db):
    waiting = notifications.notify("request.approved", ["a@chu.fr"], "waits", "b")
    retry = Retry(max_attempts=5, base_seconds=600, max_seconds=3600)
    now = _later()
    notifications.deliver_pending(Failing(), now=now, retry=retry)
    fresh = notifications.notify("request.approved", ["b@chu.fr"], "fresh", "b")
    working = Working()
    notifications.deliver_pending(working, now=now + timedelta(seconds=1), retry=retry, limit=1)
    assert working.sent == ["fresh"] and fresh.sent_at is not None
    assert waiting.sent_at is None and waiting.attempts == 1


def test_after_the_last_attempt_the_message_is_failed_and_never_tried_again(db, make_user):
    message = notifications.notify("request.approved", ["a@chu.fr"], "S", "b")
    retry = Retry(max_attempts=3, base_seconds=60, max_seconds=3600)
    notifier = Failing()
    now = _later()
    reports = []
    for _ in range(3):
        reports.append(notifications.deliver_pending(notifier, now=now, retry=retry))
        now = message.next_attempt_at or now
    assert [r.gave_up for r in reports] == [0, 0, 1]
    assert message.attempts == 3 and message.sent_at is None
    assert message.gave_up_at is not None and message.next_attempt_at is None
    assert "TimeoutError" in message.last_error

    much_later = now + timedelta(days=365)
    report = notifications.deliver_pending(notifier, now=much_later, retry=retry)
    assert report == notifications.DeliveryReport(sent=0, failed=0, held=0)
    report = notifications.deliver_pending(Working(), now=much_later, retry=retry)
    assert report.sent == 0 and message.sent_at is None
    assert len(notifier.tried) == 3 and message.attempts == 3

    db.session.commit()
    # Shown where the managers look: the worklist's count and the outbox's failed filter.
    assert worklists.failed_notifications(actor=make_user("manager")) == 1
    assert [m.id for m in notifications.list_outbox(failed_only=True).items] == [message.id]


def test_a_message_nobody_can_receive_is_given_up_at_once(db):
    message = notifications.notify("request.approved", [None], "Nobody", "b")
    report = notifications.deliver_pending(Working(), now=_later())
    assert (report.failed, report.gave_up) == (1, 1)
    assert message.gave_up_at is not None and message.attempts == 0


def test_delivery_follows_the_retry_settings(app, db):
    app.config.update(NOTIFY_MAX_ATTEMPTS=2, NOTIFY_RETRY_BASE_SECONDS=30)
    message = notifications.notify("request.approved", ["a@chu.fr"], "S", "b")
    now = _later()
    notifications.deliver_pending(Failing(), now=now)
    assert message.next_attempt_at == now + timedelta(seconds=30)
    report = notifications.deliver_pending(Failing(), now=message.next_attempt_at)
    assert report.gave_up == 1 and message.gave_up_at is not None


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"NOTIFY_MAX_ATTEMPTS": 0}, "NOTIFY_MAX_ATTEMPTS"),
        ({"NOTIFY_MAX_ATTEMPTS": "many"}, "NOTIFY_MAX_ATTEMPTS"),
        ({"NOTIFY_RETRY_BASE_SECONDS": -5}, "NOTIFY_RETRY_BASE_SECONDS"),
        ({"NOTIFY_RETRY_MAX_SECONDS": 0}, "NOTIFY_RETRY_MAX_SECONDS"),
    ],
)
def test_a_retry_setting_that_is_not_a_positive_number_is_refused(settings, named):
    with pytest.raises(Invalid) as refused:
        retry_from_config(settings)
    assert named in refused.value.fields
    assert retry_from_config({}) == Retry(max_attempts=8, base_seconds=60, max_seconds=3600)


def test_the_command_line_delivers_by_the_settings_and_says_what_it_gave_up(app, db):
    app.config.update(
        NOTIFY_MAX_ATTEMPTS=1,
        NOTIFIER="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=1,  # nothing listens there: the attempt fails at once
        MAIL_SENDER="biobank@chu.fr",
        MAIL_TIMEOUT=2,
    )
    notifications.notify("request.approved", ["a@chu.fr"], "S", "b")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["notifications", "deliver"])
    assert result.exit_code == 0, result.output
    assert "0 sent, 1 failed" in result.output and "1 given up" in result.output
    listed = app.test_cli_runner().invoke(args=["notifications", "list"])
    assert "gave up×1" in listed.output


def test_the_migration_gives_up_on_the_unaddressed_and_retries_the_others(db):
    """Messages that failed before delivery gave up: one nobody could be addressed stays
    failed, given up; one whose server failed is tried again at the next delivery."""
    db.session.commit()
    db.session.remove()
    downgrade(revision="b4d6f8a0c2e3")
    insert = sa.text(
        "INSERT INTO outbox_message (event, recipients, subject, body, created_at, attempts, "
        "last_error) VALUES ('request.approved', :to, :subject, '', :at, :n, :error)"
    )
    at = utcnow().replace(tzinfo=None) if db.engine.dialect.name == "sqlite" else utcnow()
    rows = [
        ("", "nobody", 0, notifications.NO_RECIPIENT),
        ("a@chu.fr", "refused", 3, "SMTPServerDisconnected: gone"),
        ("b@chu.fr", "waiting", 0, ""),
    ]
    for to, subject, attempts, error in rows:
        db.session.execute(
            insert, {"to": to, "subject": subject, "at": at, "n": attempts, "error": error}
        )
    db.session.commit()
    upgrade()

    gave_up = dict(
        db.session.execute(sa.text("SELECT subject, gave_up_at FROM outbox_message")).all()
    )
    assert gave_up["nobody"] is not None
    assert gave_up["refused"] is None and gave_up["waiting"] is None
    working = Working()
    report = notifications.deliver_pending(working, now=_later())
    assert sorted(working.sent) == ["refused", "waiting"] and report.failed == 0


def test_the_outbox_page_says_when_the_next_attempt_is_and_when_none_is_left(db, login_as):
    client = login_as("manager")
    retry = Retry(max_attempts=2, base_seconds=60, max_seconds=3600)
    given_up = notifications.notify("request.approved", ["a@chu.fr"], "Given up", "b")
    now = _later()
    notifications.deliver_pending(Failing(), now=now, retry=retry)
    notifications.notify("request.approved", ["b@chu.fr"], "Waiting", "b")
    notifications.deliver_pending(Failing(), now=given_up.next_attempt_at, retry=retry)
    assert given_up.gave_up_at is not None
    html = client.get("/outbox?failed=1").get_data(as_text=True)
    assert html.count("no more attempts") == 1 and html.count("next attempt") == 1
    # Newest first: the waiting message's row, then the one given up.
    waiting, gone = (
        html[html.index("Waiting") : html.index("Given up")],
        html[html.index("Given up") :],
    )
    assert "next attempt" in waiting and "no more attempts" not in waiting
    assert "no more attempts" in gone and "next attempt" not in gone
