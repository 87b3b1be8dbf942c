"""A researcher cannot direct the bank's e-mail to an address of their choosing: a
request's contact address is mailed only after a manager has confirmed it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from biobank.notifications.models import OutboxMessage
from tests import factories
from tests.answers import ok
from tests.distribution.conftest import stock
from tests.pages import refused

ATTACKER = "attacker@example.org"
REQUEST = {
    "title": "VEGF kinetics",
    "aim": "Serum VEGF at baseline",
    "receiving_lab": "VEGF laboratory, Limoges",
    "contact_name": "Dr Lab",
    "contact_email": ATTACKER,
    "criteria": {"visits": ["BL"], "sample_types": ["SER"]},
}


@pytest.fixture
def bank(db, sites):
    factories.freezer({})
    return stock(db)


def with_address(client, address):
    client.user.email = address
    return client


@pytest.fixture
def researcher(api_as, db, bank):
    client = with_address(api_as("researcher"), "researcher@lab.example")
    db.session.commit()
    return client


@pytest.fixture
def manager(api_as, db, bank):
    client = with_address(api_as("manager"), "manager@chu.example")
    db.session.commit()
    return client


ACCOUNTS = {"researcher@lab.example", "manager@chu.example"}


def submitted(researcher, **changes) -> int:
    return ok(researcher.post("/api/v1/requests", json={**REQUEST, **changes}), 201)["id"]


def approve(manager, request_id) -> None:
    proposal = ok(manager.get(f"/api/v1/requests/{request_id}/proposal"))
    chosen = [a["barcode"] for a in proposal["aliquots"]]
    ok(manager.post(f"/api/v1/requests/{request_id}/approve", json={"aliquots": chosen}))


def reject(manager, request_id) -> None:
    ok(manager.post(f"/api/v1/requests/{request_id}/reject", json={"reason": "Out of scope"}))


def told(db, event: str | None = None) -> list[set[str]]:
    """The addresses of each outbox message (of one kind of event)."""
    query = sa.select(OutboxMessage.recipients).order_by(OutboxMessage.id)
    if event:
        query = query.where(OutboxMessage.event == event)
    rows = db.session.execute(query).scalars().all()
    db.session.rollback()
    return [{a.strip() for a in row.split(",") if a.strip()} for row in rows]


def test_a_typed_contact_address_is_never_mailed(db, researcher, manager):
    first = submitted(researcher)
    approve(manager, first)
    reject(manager, submitted(researcher))
    everyone = set().union(*told(db))
    assert ATTACKER not in everyone
    assert everyone <= ACCOUNTS
    assert told(db, "request.approved") == [{"researcher@lab.example"}]
    assert told(db, "request.rejected") == [{"researcher@lab.example"}]
    # The contact is still shown on the request, unconfirmed.
    shown = ok(researcher.get(f"/api/v1/requests/{first}"))
    assert shown["contact_email"] == ATTACKER and shown["contact_confirmed"] is False


def test_a_contact_a_manager_confirmed_is_told_of_what_follows(db, researcher, manager):
    request_id = submitted(researcher)
    confirmed = ok(
        manager.post(
            f"/api/v1/requests/{request_id}/contact/confirm", json={"contact_email": ATTACKER}
        )
    )
    assert confirmed["contact_confirmed"] is True
    assert confirmed["contact_confirmed_by"] == manager.user.username
    assert confirmed["contact_confirmed_at"]
    approve(manager, request_id)
    assert told(db, "request.approved") == [{"researcher@lab.example", ATTACKER}]
    again = manager.post(
        f"/api/v1/requests/{request_id}/contact/confirm", json={"contact_email": ATTACKER}
    )
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "contact.already_confirmed"


def test_changing_the_contact_clears_the_confirmation(db, researcher, manager):
    request_id = submitted(researcher, contact_email="lab@chu.example")
    ok(
        manager.post(
            f"/api/v1/requests/{request_id}/contact/confirm",
            json={"contact_email": "lab@chu.example"},
        )
    )
    changed = ok(
        researcher.put(
            f"/api/v1/requests/{request_id}/contact",
            json={"contact_name": "Someone else", "contact_email": ATTACKER},
        )
    )
    assert changed["contact_email"] == ATTACKER and changed["contact_confirmed"] is False
    assert changed["contact_confirmed_by"] is None and changed["contact_confirmed_at"] is None
    reject(manager, request_id)
    assert told(db, "request.rejected") == [{"researcher@lab.example"}]


def test_a_manager_confirms_only_the_address_they_were_shown(db, researcher, manager):
    request_id = submitted(researcher, contact_email="lab@chu.example")
    ok(
        researcher.put(
            f"/api/v1/requests/{request_id}/contact",
            json={"contact_name": "Dr Lab", "contact_email": ATTACKER},
        )
    )
    stale = manager.post(
        f"/api/v1/requests/{request_id}/contact/confirm",
        json={"contact_email": "lab@chu.example"},
    )
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "contact.changed"
    shown = ok(manager.get(f"/api/v1/requests/{request_id}"))
    assert shown["contact_confirmed"] is False


def test_only_a_manager_confirms_a_contact(db, researcher, manager, api_as, login_as):
    request_id = submitted(researcher)
    url = f"/api/v1/requests/{request_id}/contact/confirm"
    for client in (researcher, api_as("technician")):
        refused_ = client.post(url, json={"contact_email": ATTACKER})
        assert refused_.status_code == 403
    page = login_as("researcher")
    assert (
        page.post(
            f"/requests/{request_id}/contact/confirm", data={"contact_email": ATTACKER}
        ).status_code
        == 403
    )
    assert ok(manager.get(f"/api/v1/requests/{request_id}"))["contact_confirmed"] is False
    approve(manager, request_id)
    assert ATTACKER not in set().union(*told(db))


def test_the_request_page_offers_the_confirmation_to_managers(db, researcher, login_as):
    request_id = submitted(researcher)
    owner = login_as("researcher")
    db.session.execute(
        sa.text("UPDATE sample_request SET researcher_id = :u WHERE id = :r"),
        {"u": owner.user.id, "r": request_id},
    )
    db.session.commit()
    page = owner.get(f"/requests/{request_id}").get_data(as_text=True)
    assert ATTACKER in page and "Not confirmed" in page and "Confirm this contact" not in page

    manager = login_as("manager")
    page = manager.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "Confirm this contact" in page
    done = manager.post(f"/requests/{request_id}/contact/confirm", data={"contact_email": ATTACKER})
    assert done.status_code == 303
    page = manager.get(f"/requests/{request_id}").get_data(as_text=True)
    assert f"Confirmed by {manager.user.username}" in page

    # The researcher changes the address on the page: unconfirmed again.
    moved = owner.post(
        f"/requests/{request_id}/contact",
        data={"contact_name": "Dr Lab", "contact_email": "other@example.org"},
    )
    assert moved.status_code == 303
    page = owner.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "other@example.org" in page and "Not confirmed" in page
    bad = owner.post(
        f"/requests/{request_id}/contact", data={"contact_name": "Dr Lab", "contact_email": "x"}
    )
    assert "e-mail" in refused(owner, bad)


def test_the_contact_stays_as_the_manifest_names_it_once_packed(db, researcher, manager, api_as):
    request_id = submitted(researcher, contact_email="lab@chu.example")
    approve(manager, request_id)
    ok(api_as("technician").post("/api/v1/shipments", json={"request_id": request_id}), 201)
    late = researcher.put(
        f"/api/v1/requests/{request_id}/contact",
        json={"contact_name": "Dr Lab", "contact_email": ATTACKER},
    )
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "request.packed"
