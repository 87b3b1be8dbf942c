"""The outbox holds every centre's mail: a manager bound to a centre reads only what was
written to the accounts of that centre, and cannot send the others'."""

from __future__ import annotations

from biobank.extensions import db
from biobank.notifications import services as notifications
from biobank.notifications.models import OutboxMessage


def write_mail(login_as):
    paris = login_as("manager", site="PAR")
    limoges = login_as("manager", site="LIM")
    paris.user.email = "manager.paris@chu-paris.example"
    limoges.user.email = "manager.limoges@chu-limoges.example"
    notifications.notify(
        "shipment.discrepancy",
        [limoges.user.email],
        "LIM shipment S00001: 1 missing",
        "Tube LIMSECRET1 of LIM-001 is missing.",
    )
    notifications.notify(
        "shipment.discrepancy",
        [paris.user.email],
        "PAR shipment S00002: 1 damaged",
        "Tube PARTUBE01 arrived damaged.",
    )
    db.session.commit()
    return paris, limoges


def test_a_paris_manager_reads_only_the_mail_of_paris_accounts(login_as):
    paris, limoges = write_mail(login_as)
    page = paris.get("/outbox").get_data(as_text=True)
    assert "PARTUBE01" in page
    assert "LIMSECRET1" not in page and "LIM shipment" not in page
    assert "LIMSECRET1" in limoges.get("/outbox").get_data(as_text=True)
    central = login_as("admin")
    both = central.get("/outbox").get_data(as_text=True)
    assert "LIMSECRET1" in both and "PARTUBE01" in both


def test_a_centre_bound_manager_cannot_deliver_every_centre_mail(login_as):
    paris, _limoges = write_mail(login_as)
    assert "Deliver pending messages" not in paris.get("/outbox").get_data(as_text=True)
    refused = paris.post("/outbox/deliver", follow_redirects=True)
    assert "the central team does it" in refused.get_data(as_text=True)
    pending = db.session.execute(
        db.select(db.func.count()).where(OutboxMessage.sent_at.is_(None))
    ).scalar()
    assert pending == 2
