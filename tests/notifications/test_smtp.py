"""Delivery through a real SMTP server (aiosmtpd on the loopback)."""

from __future__ import annotations

import email
from email import policy

from biobank.notifications import services as notifications
from biobank.notifications.services import SmtpNotifier

BODY = "Bonjour,\n\nLa demande R-12 a été approuvée : 3 aliquotes de sérum, réservées à Limoges.\n"


def _notifier(port: int) -> SmtpNotifier:
    return SmtpNotifier("127.0.0.1", port, "biobank@chu-limoges.fr", timeout=5)


def test_a_message_reaches_the_smtp_server_with_its_accents(db, smtp_server):
    message = notifications.notify(
        "request.approved", ["chercheuse@chu.fr", "gestion@chu.fr"], "Demande approuvée", BODY
    )
    report = notifications.deliver_pending(_notifier(smtp_server.port))
    assert (report.sent, report.failed, report.held) == (1, 0, 0)
    assert message.sent_at is not None and message.attempts == 1
    [envelope] = smtp_server.handler.envelopes
    assert envelope.mail_from == "biobank@chu-limoges.fr"
    assert envelope.rcpt_tos == ["chercheuse@chu.fr", "gestion@chu.fr"]
    received = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert received["Subject"] == "Demande approuvée"
    assert received["To"] == "chercheuse@chu.fr, gestion@chu.fr"
    assert received.get_content().replace("\r\n", "\n") == BODY
    assert envelope.original_content.isascii()  # 7-bit clean for any relay on the way


def test_an_unreachable_server_records_the_attempt_and_the_next_message_is_tried(db, closed_port):
    first = notifications.notify("request.approved", ["a@chu.fr"], "Un", "b")
    second = notifications.notify("request.rejected", ["b@chu.fr"], "Deux", "b")
    report = notifications.deliver_pending(_notifier(closed_port))
    assert (report.sent, report.failed) == (0, 2)
    for message in (first, second):
        assert message.sent_at is None
        assert message.attempts == 1
        assert message.last_error  # e.g. "ConnectionRefusedError: [Errno 111] ..."


def test_a_refused_recipient_fails_its_message_only(db, smtp_server):
    smtp_server.handler.refuse = {"gone@chu.fr"}
    refused = notifications.notify("request.approved", ["gone@chu.fr"], "Refusé", "b")
    accepted = notifications.notify("request.approved", ["here@chu.fr"], "Accepté", "b")
    report = notifications.deliver_pending(_notifier(smtp_server.port))
    assert (report.sent, report.failed) == (1, 1)
    assert refused.sent_at is None and refused.attempts == 1
    assert "gone@chu.fr" in refused.last_error and "550" in refused.last_error
    assert accepted.sent_at is not None
    assert [e.rcpt_tos for e in smtp_server.handler.envelopes] == [["here@chu.fr"]]
