"""Receipt by the services: what a missing or damaged tube leaves on the tube itself, what
the request and the managers are told, a tube found later, and every scan replayed
(twice, after completion, from another shipment, a completion pressed twice)."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from biobank.auth import services as auth
from biobank.custody import services as custody
from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from biobank.errors import Conflict, Invalid
from biobank.notifications.models import OutboxMessage
from biobank.samples import services as samples
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request

DRY_ICE = Dispatch("World Courier", "WC123456", True, 5.0, "TL-42")


def kinds(barcode: str) -> list[str]:
    return [e.kind for e in custody.history(samples.find_aliquot(barcode, actor=None).id)]


def events(barcode: str):
    return custody.history(samples.find_aliquot(barcode, actor=None).id)


def outbox(db, event: str) -> list[OutboxMessage]:
    return list(
        db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.event == event)).scalars()
    )


@pytest.fixture
def people(db, sites):
    manager = auth.create_user("boss", "manager", PASSWORD, email="boss@chu.example")
    researcher = auth.create_user("curie", "researcher", PASSWORD, email="curie@lab.example")
    technician = factories.user("technician", password=PASSWORD)
    db.session.commit()
    return manager, researcher, technician


def dispatched(db, people, *, per=2, visits="BL"):
    """A request approved, picked, packed and dispatched; returns (request, shipment code,
    barcodes in packing order)."""
    manager, researcher, technician = people
    request = serum_request(researcher, visits=visits, per_participant_visit=per)
    chosen = [c.barcode for c in requests.propose(request.id, actor=manager).selection.chosen]
    requests.approve(request.id, chosen, actor=manager)
    shipment = shipping.create_shipment(request_id=request.id, actor=technician)
    for code in chosen:
        shipping.add_to_shipment(shipment.code, code, actor=technician)
    shipping.dispatch(shipment.code, DRY_ICE, actor=technician)
    db.session.commit()
    return request, shipment.code, chosen


def test_a_receipt_leaves_missing_and_damaged_tubes_recorded_on_the_tubes(bank, db, people):
    _manager, _researcher, technician = people
    request, code, chosen = dispatched(db, people)
    good, cracked, *gone = chosen
    shipping.check_in(code, good, actor=technician)
    shipping.check_in(code, cracked, damaged=True, note="cracked cap", actor=technician)
    done = shipping.complete_receipt(code, condition="dry ice left", actor=technician)
    db.session.commit()

    assert done.received == [good] and done.damaged == [cracked]
    assert sorted(done.missing) == sorted(gone) and done.not_scanned == []
    for barcode in gone:
        aliquot = samples.find_aliquot(barcode, actor=None)
        assert aliquot.status == "missing"
        missing = events(barcode)[-1]
        assert missing.kind == "MISSING"
        assert json.loads(missing.details)["shipment"] == code
    received = events(cracked)[-1]
    assert received.kind == "RECEIVED" and received.reason == "cracked cap"
    assert json.loads(received.details)["damaged"] is True
    assert samples.find_aliquot(cracked, actor=None).status == "received"

    arrival = shipping.request_receipt(request.id)
    assert (arrival.shipped, arrival.arrived, arrival.damaged, arrival.missing) == (
        len(chosen),
        2,
        1,
        len(gone),
    )
    assert arrival.awaited == 0

    (told,) = outbox(db, "receipt.discrepancy")
    assert told.recipients == "boss@chu.example"
    assert f"{len(gone)} missing, 1 damaged, 0 unexpected" in told.subject
    assert all(barcode in told.body for barcode in gone)
    assert f"{cracked} (cracked cap)" in told.body
    assert custody.verify().intact


def test_a_receipt_without_discrepancy_tells_the_managers_nothing(bank, db, people):
    technician = people[2]
    _, code, chosen = dispatched(db, people, per=1)
    for barcode in chosen:
        shipping.check_in(code, barcode, actor=technician)
    shipping.complete_receipt(code, condition="frozen", actor=technician)
    assert outbox(db, "receipt.discrepancy") == []


def test_the_same_tube_scanned_twice_at_receipt_is_told_and_writes_nothing(bank, db, people):
    technician = people[2]
    _, code, chosen = dispatched(db, people)
    first = shipping.check_in(code, chosen[0], note="", actor=technician)
    db.session.commit()
    item = next(i for i in shipping.get_shipment(code, actor=technician).items if i.outcome)
    checked_at = item.checked_at

    with pytest.raises(Conflict) as again:
        shipping.check_in(code, chosen[0].lower(), actor=technician)
    assert again.value.code == "receipt.already_checked_in"
    assert "already checked in" in str(again.value.message)
    assert f"box {first.box}, position {first.position}" in str(again.value.message)
    db.session.rollback()
    item = next(i for i in shipping.get_shipment(code, actor=technician).items if i.outcome)
    assert (item.outcome, item.checked_at) == ("received", checked_at)

    # Scanned again to record damage: that is a change, recorded.
    assert shipping.check_in(code, chosen[0], damaged=True, actor=technician).outcome == "damaged"


def test_a_rack_read_twice_records_nothing_twice(bank, db, people):
    technician = people[2]
    _, code, chosen = dispatched(db, people)
    rack = (
        "Position,Barcode\n" + "\n".join(f"A{n + 1},{c}" for n, c in enumerate(chosen))
    ).encode()
    assert len(shipping.check_in_rack(code, rack, actor=technician)) == len(chosen)
    assert shipping.check_in_rack(code, rack, actor=technician) == []


def test_a_tube_of_another_shipment_is_unexpected_and_named(bank, db, people, sites):
    technician = people[2]
    _, code, chosen = dispatched(db, people, per=1)
    lim = factories.user("technician", site="LIM", password=PASSWORD)
    factories.participant("LIM", code="LIM-009")
    stray = factories.visit("LIM-009", "BL").aliquots[0].barcode
    transfer = shipping.create_shipment(destination_site="BIO", actor=lim)
    shipping.add_to_shipment(transfer.code, stray, actor=lim)
    db.session.commit()

    checked = shipping.check_in(code, stray, actor=technician)
    assert (checked.outcome, checked.elsewhere) == ("unexpected", transfer.code)
    assert shipping.receipt(code, actor=technician).unexpected == [stray]
    assert samples.find_aliquot(stray, actor=None).status == "registered"

    for barcode in chosen:
        shipping.check_in(code, barcode, actor=technician)
    shipping.complete_receipt(code, condition="frozen", actor=technician)
    db.session.commit()
    count = samples.find_aliquot(stray, actor=None).custody_count
    with pytest.raises(Conflict) as refused:
        shipping.check_in(code, stray, actor=technician)
    assert refused.value.code == "receipt.not_on_manifest"
    db.session.rollback()
    assert samples.find_aliquot(stray, actor=None).custody_count == count


def test_completing_a_receipt_twice_is_refused_and_writes_nothing(bank, db, people):
    technician = people[2]
    _, code, chosen = dispatched(db, people)
    shipping.check_in(code, chosen[0], actor=technician)
    shipping.complete_receipt(code, condition="frozen", actor=technician)
    db.session.commit()
    counts = [samples.find_aliquot(c, actor=None).custody_count for c in chosen]

    with pytest.raises(Conflict) as again:
        shipping.complete_receipt(code, condition="frozen again", actor=technician)
    assert again.value.code == "receipt.already_recorded"
    assert technician.username in str(again.value.message)
    db.session.rollback()
    assert [samples.find_aliquot(c, actor=None).custody_count for c in chosen] == counts
    assert shipping.get_shipment(code, actor=technician).receipt_condition == "frozen"


def test_a_missing_tube_scanned_after_the_receipt_is_found_and_received(bank, db, people):
    _manager, _researcher, technician = people
    request, code, chosen = dispatched(db, people)
    shipping.check_in(code, chosen[0], actor=technician)
    shipping.complete_receipt(code, condition="frozen", actor=technician)
    late = chosen[1]

    checked = shipping.check_in(code, late, note="in the dry ice", actor=technician)
    assert checked.outcome == "found" and checked.box == 1
    assert samples.find_aliquot(late, actor=None).status == "received"
    assert kinds(late)[-3:] == ["MISSING", "FOUND", "RECEIVED"]
    assert json.loads(events(late)[-2].details)["shipment"] == code
    assert late in shipping.receipt(code, actor=technician).received
    assert shipping.request_receipt(request.id).arrived == 2
    (found,) = outbox(db, "receipt.found")
    assert late in found.subject and found.recipients == "boss@chu.example"

    with pytest.raises(Conflict) as again:
        shipping.check_in(code, late, actor=technician)
    assert again.value.code == "receipt.already_checked_in"
    assert custody.verify().intact


def test_a_missing_tube_found_elsewhere_is_in_hand_then_received_or_stored(bank, db, people):
    technician = people[2]
    _, code, chosen = dispatched(db, people, visits="BL,M2")
    shipping.complete_receipt(code, condition="frozen", actor=technician)
    db.session.commit()
    back_home, at_the_lab = chosen[0], chosen[1]

    with pytest.raises(Invalid) as nowhere:
        shipping.record_found(back_home, "  ", actor=technician)
    assert nowhere.value.fields == {"where": ""}
    db.session.rollback()
    assert samples.find_aliquot(back_home, actor=None).status == "missing"

    found = shipping.record_found(back_home, "dispatch room, dry-ice bin", actor=technician)
    assert found.status == "checked_out"
    event = events(back_home)[-1]
    assert (event.kind, event.to_location) == ("FOUND", "dispatch room, dry-ice bin")
    assert json.loads(event.details)["shipment"] == code
    with pytest.raises(Conflict) as twice:
        shipping.record_found(back_home, "again", actor=technician)
    assert twice.value.code == "aliquot.not_missing"
    db.session.rollback()

    shipping.record_found(at_the_lab, "called by the laboratory", actor=technician)
    assert shipping.check_in(code, at_the_lab, actor=technician).outcome == "found"
    assert samples.find_aliquot(at_the_lab, actor=None).status == "received"
    assert kinds(at_the_lab)[-2:] == ["FOUND", "RECEIVED"]
    assert custody.verify().intact


def test_a_missing_tube_cannot_be_recorded_destroyed_after_a_withdrawal(bank, db, people):
    manager, _, technician = people
    _, code, chosen = dispatched(db, people, per=1)
    shipping.complete_receipt(code, condition="frozen", actor=technician)
    participant = samples.scan_aliquot(chosen[0], actor=None).participant
    shipping.withdraw_consent(participant, date(2026, 3, 1), actor=manager)
    with pytest.raises(Conflict) as refused:
        shipping.destroy_withdrawn(participant, [chosen[0]], "autoclaved", actor=manager)
    assert refused.value.code == "aliquot.not_in_hand"
    assert chosen[0] in str(refused.value.message)


def test_the_same_tube_picked_or_packed_twice_is_told_and_recorded_once(bank, db, people):
    manager, researcher, technician = people
    request = serum_request(researcher)
    chosen = [c.barcode for c in requests.propose(request.id, actor=manager).selection.chosen]
    requests.approve(request.id, chosen, actor=manager)
    shipping.pick(request.id, chosen[0], actor=technician)
    db.session.commit()
    with pytest.raises(Conflict) as picked:
        shipping.pick(request.id, chosen[0], actor=technician)
    assert picked.value.code == "pick.already_picked"
    db.session.rollback()
    assert kinds(chosen[0]).count("CHECKED_OUT") == 1

    shipment = shipping.create_shipment(request_id=request.id, actor=technician)
    shipping.add_to_shipment(shipment.code, chosen[0], actor=technician)
    db.session.commit()
    with pytest.raises(Conflict) as packed:
        shipping.add_to_shipment(shipment.code, chosen[0], actor=technician)
    assert packed.value.code == "shipment.already_packed"
    assert "box 1, position A1" in str(packed.value.message)
    db.session.rollback()
    assert len(shipping.get_shipment(shipment.code, actor=technician).items) == 1
