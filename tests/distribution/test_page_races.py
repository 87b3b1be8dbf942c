"""Two people at two browsers sending the same decision at the same instant, through the
pages, many times over (SQLite here, PostgreSQL in CI): two managers approving one request
with two different sets of aliquots, two technicians completing one receipt. One wins, the
other is told; never two reservation sets, never an event written twice, never a 500."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.distribution import shipping
from biobank.distribution.models import Reservation, SampleRequest
from biobank.extensions import db as _db
from biobank.samples import services as samples
from tests import factories
from tests.conftest import PASSWORD
from tests.distribution.conftest import serum_request, stock
from tests.distribution.test_receipt import DRY_ICE
from tests.races import ROUNDS, race_pages


def post(client, url, data):
    def send():
        return client.post(url, data=data)

    return send


def shown(client, response) -> str:
    return html.unescape(client.get(response.location).get_data(as_text=True))


@pytest.mark.slow
def test_two_managers_approving_one_request_at_once_reserve_one_set(app, db, sites, login_as):
    factories.freezer({})
    first, second = login_as("manager"), login_as("manager")
    researcher = factories.user("researcher", password=PASSWORD)
    db.session.commit()
    for round_ in range(ROUNDS):
        code = f"LIM-{round_ + 101:03d}"
        serum = stock(db, participants=(code,), visits=("BL",), first_box=round_ * 2 + 10)[
            (code, "BL", "SER")
        ]
        request = serum_request(researcher, title=f"Study {round_}", per_participant_visit=2)
        db.session.commit()
        url = f"/requests/{request.id}/approve"
        # Two reviews of the same request, each approving a different, valid set.
        answers = race_pages(
            app,
            [
                post(first, url, {"aliquots": serum[0]}),
                post(second, url, {"aliquots": serum[1]}),
            ],
        )
        assert all(not isinstance(a, Exception) for a in answers), answers
        assert [a.status_code for a in answers] == [303, 303], answers
        winners = [a for a in answers if a.location.endswith(f"/requests/{request.id}")]
        assert len(winners) == 1, [a.location for a in answers]
        loser = answers[1] if winners[0] is answers[0] else answers[0]
        loser_client = second if loser is answers[1] else first
        assert loser.location.endswith(f"/requests/{request.id}/review")
        assert "was already approved by" in shown(loser_client, loser)

        db.session.expire_all()
        held = db.session.execute(
            sa.select(Reservation.aliquot_id).where(
                Reservation.request_id == request.id, Reservation.closed_at.is_(None)
            )
        ).all()
        assert len(held) == 1
        statuses = [e.status for e in db.session.get(SampleRequest, request.id).events]
        assert statuses.count("approved") == 1
    assert custody.verify().intact


@pytest.mark.slow
def test_two_technicians_completing_one_receipt_at_once_record_it_once(app, db, sites, login_as):
    first, second = login_as("technician", site="BIO"), login_as("technician", site="BIO")
    sender = factories.user("technician", site="LIM", password=PASSWORD)
    db.session.commit()
    for round_ in range(ROUNDS):
        code = f"LIM-{round_ + 201:03d}"
        factories.participant("LIM", code=code)
        tubes = [a.barcode for a in factories.visit(code, "BL").aliquots][:3]
        shipment = shipping.create_shipment(destination_site="BIO", actor=sender)
        for barcode in tubes:
            shipping.add_to_shipment(shipment.code, barcode, actor=sender)
        shipping.dispatch(shipment.code, DRY_ICE, actor=sender)
        shipping.check_in(shipment.code, tubes[0], actor=first.user)
        shipping.check_in(shipment.code, tubes[1], damaged=True, actor=first.user)
        db.session.commit()
        url = f"/shipments/{shipment.code}/receipt"

        answers = race_pages(
            app,
            [
                post(first, url, {"condition": "frozen"}),
                post(second, url, {"condition": "thawed"}),
            ],
        )
        assert all(not isinstance(a, Exception) for a in answers), answers
        assert [a.status_code for a in answers] == [303, 303], answers
        pages = [shown(c, a) for c, a in zip((first, second), answers, strict=True)]
        recorded = [p for p in pages if "Receipt recorded: 1 received, 1 damaged, 1 missing." in p]
        told = [p for p in pages if "was already recorded by" in p]
        assert (len(recorded), len(told)) == (1, 1), pages

        db.session.expire_all()
        kinds = {
            b: [e.kind for e in custody.history(samples.find_aliquot(b, actor=None).id)]
            for b in tubes
        }
        assert kinds[tubes[0]].count("RECEIVED") == 1
        assert kinds[tubes[1]].count("RECEIVED") == 1
        assert kinds[tubes[2]].count("MISSING") == 1
        assert samples.find_aliquot(tubes[2], actor=None).status == "missing"
        condition = shipping.get_shipment(shipment.code, actor=first.user).receipt_condition
        assert condition in ("frozen", "thawed")
    assert custody.verify().intact
    _db.session.remove()
