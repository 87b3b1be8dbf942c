"""Requests: catalogue, submission, review, approval with reservation, and the rules."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.distribution import disclosure, shipping
from biobank.distribution import services as requests
from biobank.distribution.criteria import Criteria, parse
from biobank.distribution.models import Reservation
from biobank.errors import Conflict, Invalid
from biobank.notifications.models import OutboxMessage
from biobank.storage import services as storage
from tests import factories
from tests.conftest import PASSWORD


@pytest.fixture
def people(sites):
    researcher = factories.user("researcher", password=PASSWORD)
    researcher.email = "researcher@lab.example"
    manager = factories.user("manager", password=PASSWORD)
    manager.email = "manager@chu.example"
    return researcher, manager


def submit(researcher, **criteria):
    return requests.submit_request(
        title="VEGF kinetics",
        aim="Serum VEGF at baseline and month 2",
        receiving_lab="VEGF laboratory, Limoges",
        contact_name="Dr Lab",
        contact_email="lab@chu.example",
        criteria=parse({"visits": ["BL", "M2"], "sample_types": ["SER"], **criteria}),
        actor=researcher,
    )


def barcodes(proposal):
    return [c.barcode for c in proposal.selection.chosen]


def test_catalogue_counts_available_aliquots_by_arm_visit_and_type(bank, db):
    rows = requests.catalogue(Criteria())
    cells = {(r.arm, r.visit, r.sample_type): r for r in rows}
    serum = cells[("G2", "BL", "SER")]
    assert (serum.participants, serum.aliquots, serum.volume_ul) == (3, 15, 15 * 500)


def test_catalogue_leaves_out_cells_under_the_small_cell_threshold_for_researchers(
    app, bank, db, people
):
    researcher, manager = people
    app.config["CATALOGUE_SMALL_CELL"] = 4
    shown = disclosure.catalogue(Criteria(), actor=researcher)
    # Every planned combination is listed, held or not: a row's presence tells nothing.
    assert len(shown) > 4
    assert all((str(r.participants), r.aliquots) == ("< 4", None) for r in shown)
    exact = disclosure.catalogue(Criteria(), actor=manager)
    assert len(exact) == 4 and all(r.participants.exact for r in exact)
    app.config["CATALOGUE_SMALL_CELL"] = 3
    shown = disclosure.catalogue(Criteria(), actor=researcher)
    assert {(str(r.participants), str(r.aliquots), r.volume_ul) for r in shown} == {
        ("3–7", "13–17", None),
        ("< 3", "None", None),
    }


def test_catalogue_leaves_out_reserved_withdrawn_and_filtered_aliquots(bank, db, people):
    researcher, manager = people
    request = submit(researcher, per_participant_visit=2)
    proposal = requests.propose(request.id, actor=manager)
    requests.approve(request.id, barcodes(proposal), actor=manager)
    shipping.withdraw_consent("LIM-003", date(2026, 3, 1), actor=manager)
    rows = requests.catalogue(parse({"visits": "BL", "sample_types": "SER"}))
    assert [(r.participants, r.aliquots) for r in rows] == [(2, 6)]
    assert requests.catalogue(parse({"max_freeze_thaw": 0, "arms": "G1"})) == []


def test_match_count_keeps_the_last_aliquot_of_each_group(bank, db):
    many = requests.match_count(
        parse({"visits": "BL", "sample_types": "SER", "per_participant_visit": 9})
    )
    assert (many.participants, many.aliquots, many.held_back) == (3, 12, 3)


def test_submission_is_recorded_and_tells_the_managers(bank, db, people):
    researcher, _ = people
    request = submit(researcher)
    assert request.status == "submitted"
    assert [e.status for e in request.events] == ["submitted"]
    message = db.session.execute(sa.select(OutboxMessage)).scalar_one()
    assert message.event == "request.submitted" and "manager@chu.example" in message.recipients


def test_a_request_without_visits_is_refused_naming_the_field(bank, db, people):
    with pytest.raises(Invalid) as refused:
        requests.submit_request(
            title="t",
            aim="a",
            receiving_lab="l",
            contact_name="c",
            contact_email="c@x.example",
            criteria=parse({"sample_types": "SER"}),
            actor=people[0],
        )
    assert "visits" in refused.value.fields


def test_researchers_see_only_their_own_requests(bank, db, people):
    researcher, manager = people
    other = factories.user("researcher", password=PASSWORD)
    mine = submit(researcher)
    assert requests.list_requests(actor=researcher).total == 1
    assert requests.list_requests(actor=other).total == 0
    assert requests.list_requests(actor=manager).total == 1
    with pytest.raises(Exception) as hidden:
        requests.get_request(mine.id, actor=other)
    assert hidden.value.code == "not_found"


def test_approval_reserves_exactly_the_reviewed_aliquots(bank, db, people):
    researcher, manager = people
    request = submit(researcher, per_participant_visit=2)
    proposal = requests.propose(request.id, actor=manager)
    assert len(proposal.selection.chosen) == 12  # 3 participants × 2 visits × 2
    approval = requests.approve(request.id, barcodes(proposal), actor=manager)
    assert approval.reserved == 12 and request.status == "approved"
    assert [e.status for e in request.events] == ["submitted", "under_review", "approved"]
    held = db.session.execute(sa.select(Reservation)).scalars().all()
    assert {r.aliquot.barcode for r in held} == set(barcodes(proposal))
    kinds = {e.kind for r in held for e in r.aliquot.custody_events}
    assert "RESERVED" in kinds
    assert custody.verify().intact


def test_proposal_prefers_fewer_freeze_thaw_cycles(bank, db, people):
    researcher, manager = people
    first = bank[("LIM-001", "BL", "SER")][0]
    storage.check_out(first, "aliquoting", actor=manager)
    storage.return_aliquot(first, 400, thawed=True, actor=manager)
    request = submit(researcher)
    chosen = barcodes(requests.propose(request.id, actor=manager))
    assert first not in chosen
    assert bank[("LIM-001", "BL", "SER")][1] in chosen


def test_the_last_aliquot_needs_an_override_reason(bank, db, people):
    researcher, manager = people
    request = submit(researcher, per_participant_visit=5)
    proposal = requests.propose(request.id, actor=manager)
    assert len(proposal.selection.chosen) == 24 and len(proposal.selection.held_back) == 6
    everything = requests.propose(request.id, allow_last=True, actor=manager)
    with pytest.raises(Conflict) as refused:
        requests.approve(request.id, barcodes(everything), actor=manager)
    assert refused.value.code == "reservation.last_aliquot"
    assert db.session.execute(sa.select(sa.func.count(Reservation.id))).scalar() == 0
    approval = requests.approve(
        request.id, barcodes(everything), override_reason="Pilot needs all", actor=manager
    )
    assert len(approval.last_ones) == 30  # 6 groups emptied, 5 aliquots each
    overridden = (
        db.session.execute(sa.select(Reservation).where(Reservation.override_reason.is_not(None)))
        .scalars()
        .all()
    )
    assert {r.override_reason for r in overridden} == {"Pilot needs all"}


def test_approval_names_aliquots_reserved_meanwhile_and_writes_nothing(bank, db, people):
    researcher, manager = people
    first, second = submit(researcher), submit(researcher)
    reviewed = barcodes(requests.propose(second.id, actor=manager))
    requests.approve(first.id, barcodes(requests.propose(first.id, actor=manager)), actor=manager)
    with pytest.raises(Conflict) as refused:
        requests.approve(second.id, reviewed, actor=manager)
    assert refused.value.code == "reservation.unavailable"
    assert f"R{first.id:05d}" in str(refused.value.message)
    assert set(refused.value.fields["aliquots"].split()) & set(reviewed)
    assert second.status == "submitted"


def test_a_reserved_aliquot_cannot_be_checked_out_for_anything_else(bank, db, people):
    researcher, manager = people
    request = submit(researcher)
    chosen = barcodes(requests.propose(request.id, actor=manager))
    requests.approve(request.id, chosen, actor=manager)
    with pytest.raises(Conflict) as refused:
        storage.check_out(chosen[0], "another study", actor=manager)
    assert refused.value.code == "aliquot.reserved"
    with pytest.raises(Conflict):
        storage.destroy(chosen[0], "dropped", actor=manager)


def test_withdrawal_blocks_distribution_at_once_and_lists_the_aliquots(bank, db, people):
    researcher, manager = people
    request = submit(researcher)
    requests.approve(
        request.id, barcodes(requests.propose(request.id, actor=manager)), actor=manager
    )
    affected = shipping.withdraw_consent("LIM-002", date(2026, 3, 1), actor=manager)
    assert len(affected) == 20 and all(a.reserved_for is None for a in affected)
    left = {i.participant for i in shipping.pick_list(request.id, actor=manager).items}
    assert left == {"LIM-001", "LIM-003"}
    assert (
        requests.match_count(
            criteria=parse({"visits": "BL", "sample_types": "SER", "per_participant_visit": 5})
        ).participants
        == 2
    )
    code = affected[0].barcode
    assert shipping.destroy_withdrawn("LIM-002", [code], "consent withdrawn", actor=manager) == 1
    db.session.flush()
    assert len(shipping.affected_by_withdrawal("LIM-002", actor=manager)) == 19


def test_rejection_and_cancellation_need_a_reason_and_release(bank, db, people):
    researcher, manager = people
    request = submit(researcher)
    with pytest.raises(Invalid):
        requests.reject(request.id, " ", actor=manager)
    requests.reject(request.id, "Out of scope", actor=manager)
    assert request.status == "rejected"
    other = submit(researcher)
    requests.approve(other.id, barcodes(requests.propose(other.id, actor=manager)), actor=manager)
    requests.cancel(other.id, "Project stopped", actor=researcher)
    assert requests.open_reservations(other.id) == []
    assert requests.catalogue(parse({"visits": "BL", "sample_types": "SER"}))[0].aliquots == 15
