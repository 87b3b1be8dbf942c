"""Picking by scan, packing, dispatch, receipt and the laboratory's use, by the services."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.distribution import services as requests
from biobank.distribution import shipping
from biobank.distribution.shipping import Dispatch
from biobank.errors import Conflict, Forbidden, Invalid
from biobank.samples import services as samples
from biobank.samples.barcodes import new_aliquot_barcode
from biobank.storage.models import StoredPosition
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request

DRY_ICE = Dispatch("World Courier", "WC123456", True, 5.0, "TL-42")


@pytest.fixture
def approved(bank, db, sites):
    researcher = factories.user("researcher", password=PASSWORD)
    manager = factories.user("manager", password=PASSWORD)
    technician = factories.user("technician", password=PASSWORD)
    request = serum_request(researcher)
    chosen = [c.barcode for c in requests.propose(request.id, actor=manager).selection.chosen]
    requests.approve(request.id, chosen, actor=manager)
    db.session.commit()
    return request, chosen, technician, manager


def test_pick_list_is_in_freezer_walk_order(approved):
    request, chosen, technician, _ = approved
    items = shipping.pick_list(request.id, actor=technician).items
    assert sorted(i.barcode for i in items) == sorted(chosen)
    assert [i.location for i in items] == sorted(i.location for i in items)


def test_picking_the_wrong_tube_is_refused_and_the_right_one_checked_out(approved, bank):
    request, chosen, technician, _ = approved
    stranger = bank[("LIM-001", "M2", "SER")][0]
    with pytest.raises(Conflict) as refused:
        shipping.pick(request.id, stranger, actor=technician)
    assert refused.value.code == "pick.wrong_tube"
    assert samples.find_aliquot(stranger, actor=None).status == "in_storage"
    picked = shipping.pick(request.id, chosen[0].lower() + "\r\n", actor=technician)
    assert picked.left == len(chosen) - 1
    assert samples.find_aliquot(chosen[0], actor=None).status == "checked_out"
    assert request.status == "being_prepared"
    with pytest.raises(Conflict):
        shipping.pick(request.id, chosen[0], actor=technician)


def test_a_request_travels_to_the_lab_and_is_received(approved, db):
    request, chosen, technician, _ = approved
    for code in chosen:
        shipping.pick(request.id, code, actor=technician)
    shipment = shipping.create_shipment(request_id=request.id, actor=technician)
    for code in chosen:
        shipping.add_to_shipment(shipment.code, code, actor=technician)
    with pytest.raises(Invalid) as refused:
        shipping.dispatch(shipment.code, Dispatch("", "", True, None, ""), actor=technician)
    assert "carrier" in refused.value.fields
    shipping.dispatch(shipment.code, DRY_ICE, actor=technician)
    assert request.status == "shipped"
    assert db.session.execute(sa.select(sa.func.count(StoredPosition.id))).scalar() == 60 - len(
        chosen
    )
    assert all(samples.find_aliquot(c, actor=None).status == "shipped" for c in chosen)

    shipping.check_in(shipment.code, chosen[0], actor=technician)
    shipping.check_in(shipment.code, chosen[1], damaged=True, note="cracked cap", actor=technician)
    stranger = new_aliquot_barcode()
    assert shipping.check_in(shipment.code, stranger, actor=technician).outcome == "unexpected"
    report = shipping.complete_receipt(shipment.code, condition="dry ice left", actor=technician)
    assert report.received == [chosen[0]] and report.damaged == [chosen[1]]
    assert sorted(report.missing) == sorted(chosen[2:]) and report.unexpected == [stranger]
    assert request.status == "received"
    kinds = [e.kind for e in samples.find_aliquot(chosen[1], actor=None).custody_events]
    assert kinds[-3:] == ["CHECKED_OUT", "SHIPPED", "RECEIVED"]

    used = shipping.record_use(shipment.code, chosen[0], 500, returned=False, actor=technician)
    assert (used.status, used.volume_ul) == ("consumed", 0)
    back = shipping.record_use(shipment.code, chosen[1], 200, returned=True, actor=technician)
    assert (back.status, back.volume_ul, back.freeze_thaw_count) == ("received", 300, 1)
    assert custody.verify().intact


def test_a_transfer_ends_with_the_tubes_at_the_receiving_site(bank, db, sites):
    lim = factories.user("technician", site="LIM", password=PASSWORD)
    central = factories.user("technician", site="BIO", password=PASSWORD)
    factories.participant("LIM", code="LIM-009")
    fresh = [a.barcode for a in factories.visit("LIM-009", "BL").aliquots]
    shipment = shipping.create_shipment(destination_site="BIO", actor=lim)
    for code in fresh:
        shipping.add_to_shipment(shipment.code, code, actor=lim)
    assert [(i.box_number, i.row, i.col) for i in shipment.items][:2] == [(1, 1, 1), (1, 1, 2)]
    shipping.dispatch(shipment.code, DRY_ICE, actor=lim)
    with pytest.raises(Forbidden):
        shipping.check_in(shipment.code, fresh[0], actor=lim)
    shipping.check_in_rack(
        shipment.code,
        ("Position,Barcode\n" + "\n".join(f"A{n + 1},{c}" for n, c in enumerate(fresh))).encode(),
        actor=central,
    )
    report = shipping.complete_receipt(shipment.code, condition="frozen", actor=central)
    assert len(report.received) == 10 and not report.missing
    assert sorted(shipping.to_store(shipment.code, actor=central)) == sorted(
        samples.find_aliquot(c, actor=None).id for c in fresh
    )
