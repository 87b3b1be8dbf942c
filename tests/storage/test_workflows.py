"""Moving containers, freezer failure, and the proposal of positions for a visit."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from biobank.custody import services as custody
from biobank.errors import Conflict, Invalid
from biobank.samples import services as samples
from biobank.storage import allocating
from biobank.storage import services as storage
from tests.pages import refused


@pytest.fixture
def second_freezer(freezer, db):
    storage.create_container(
        "freezer",
        "Freezer −80 n°2",
        parent="RM-114",
        barcode="FR-0002",
        temperature_class="-80",
        actor=None,
    )
    storage.create_container("rack", "Rack B", parent="FR-0002", barcode="RK-0002", actor=None)
    storage.create_container(
        "box",
        "Box 3",
        parent="RK-0002",
        barcode="BX-0003",
        type_name="81-place 2-inch cryobox",
        actor=None,
    )
    db.session.commit()


def last_event(barcode):
    return custody.history(samples.find_aliquot(barcode, actor=None).id)[-1]


def test_moving_a_rack_moves_its_tubes_with_a_moved_event_each(tubes, second_freezer):
    for code in tubes[:3]:
        storage.store(code, "BX-0001", actor=None)
    storage.move_container("RK-0001", "FR-0002", actor=None)
    for code in tubes[:3]:
        event = last_event(code)
        assert event.kind == "MOVED"
        assert event.from_location.startswith("Freezer −80 n°1 › Shelf 1 › Rack A")
        assert event.to_location.startswith("Freezer −80 n°2 › Rack A")
    assert samples.scan_aliquot(tubes[0], actor=None).location.startswith("Freezer −80 n°2")
    assert custody.verify().intact


def test_a_container_cannot_go_into_itself_or_its_contents(freezer):
    with pytest.raises(Invalid, match="inside it") as refused:
        storage.move_container("SH-0001", "RK-0001", actor=None)
    assert refused.value.code == "container.cycle"


def test_samples_cannot_be_moved_into_a_warmer_freezer(tubes):
    storage.store(tubes[0], "BX-0001", actor=None)
    with pytest.raises(Conflict, match="warmer"):
        storage.move_container("BX-0001", "FR-0020", actor=None)


def test_a_box_holding_tubes_cannot_be_removed(tubes):
    storage.store(tubes[0], "BX-0001", actor=None)
    with pytest.raises(Conflict, match="holds tubes"):
        storage.delete_container("BX-0001", actor=None)
    with pytest.raises(Conflict, match="other containers"):
        storage.delete_container("RK-0001", actor=None)
    storage.delete_container("BX-0002", actor=None)


def test_a_freezer_lists_everything_inside(tubes):
    for code in tubes[:4]:
        storage.store(code, "BX-0002", actor=None)
    inside = storage.contents("FR-0001", actor=None)
    assert [c.barcode for c in inside] == tubes[:4]
    assert inside[0].participant == "LIM-001" and inside[0].location.endswith("A1")


def test_an_excursion_is_a_custody_event_for_every_tube_inside(tubes):
    for code in tubes[:5]:
        storage.store(code, "BX-0001", actor=None)
    start = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    end = datetime(2026, 11, 28, 5, 30, tzinfo=UTC)
    count = storage.record_excursion(
        "FR-0001",
        started_at=start,
        ended_at=end,
        highest_c=-41.5,
        note="compressor alarm",
        actor=None,
    )
    assert count == 5
    event = last_event(tubes[0])
    assert event.kind == "TEMPERATURE_EXCURSION" and event.reason == "compressor alarm"
    assert '"highest_c":-41.5' in event.details
    assert last_event(tubes[6]).kind == "REGISTERED"  # not stored, not concerned


def test_a_visit_is_proposed_split_over_two_freezers(tubes, second_freezer):
    plan = allocating.propose_for_visit("LIM-001", "BL", actor=None)
    assert len(plan.proposals) == 10 and not plan.unplaced
    by_freezer = Counter(p.location.split(" › ")[0] for p in plan.proposals)
    assert by_freezer == {"Freezer −80 n°1": 5, "Freezer −80 n°2": 5}
    assert all(p.box != "BX-0020" for p in plan.proposals)  # the −20 °C box is never offered
    allocating.store_all([(p.barcode, p.box, p.position) for p in plan.proposals], actor=None)
    assert {samples.scan_aliquot(code, actor=None).status for code in tubes} == {"in_storage"}
    again = allocating.propose_for_visit("LIM-001", "BL", actor=None)
    assert again.proposals == []


def test_a_failing_freezer_gets_an_evacuation_plan_elsewhere(tubes, second_freezer):
    for code in tubes[:6]:
        storage.store(code, "BX-0001", actor=None)
    plan = allocating.evacuation("FR-0001", actor=None)
    assert sorted(p.barcode for p in plan.proposals) == sorted(tubes[:6])
    assert {p.box for p in plan.proposals} == {"BX-0003"}


def test_the_api_covers_the_workflows(api_as, tubes, second_freezer):
    client = api_as("technician")
    plan = client.post("/api/v1/allocations", json={"participant": "LIM-001", "visit": "BL"})
    proposals = plan.get_json()["proposals"]
    assert len(proposals) == 10
    applied = client.post("/api/v1/allocations/apply", json={"placements": proposals[:4]})
    assert applied.get_json() == {"stored": 4}
    moved = client.post("/api/v1/containers/RK-0002/move", json={"parent": "SH-0001"})
    assert moved.status_code == 200 and moved.get_json()["parent"] == "SH-0001"
    inside = client.get("/api/v1/containers/FR-0001/contents").get_json()
    assert len(inside) == 4
    excursion = client.post(
        "/api/v1/containers/FR-0001/excursions",
        json={
            "started_at": "2026-11-28T02:00:00+01:00",
            "ended_at": "2026-11-28T03:00:00+01:00",
            "highest_c": -50,
        },
    )
    assert excursion.status_code == 201 and excursion.get_json()["aliquots"] == 4


def test_the_pages_move_check_out_and_return(login_as, tubes, second_freezer):
    client = login_as("technician")
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    moved = client.post(
        "/storage/move", data={"container": "bx-0001", "parent": "RK-0002"}, follow_redirects=True
    )
    assert "BX-0001 moved into RK-0002" in moved.get_data(as_text=True)
    out = client.post(
        "/storage/check-out",
        data={"code": tubes[0], "reason": "ELISA", "destination": "Lab B"},
        follow_redirects=True,
    )
    assert f"{tubes[0]} checked out" in out.get_data(as_text=True)
    back = client.post(
        "/storage/return",
        data={"code": tubes[0], "volume_ul": "300", "thawed": "1"},
        follow_redirects=True,
    )
    assert f"{tubes[0]} is back at" in back.get_data(as_text=True)
    assert samples.scan_aliquot(tubes[0], actor=None).freeze_thaw_count == 1
    no_reason = client.post("/storage/check-out", data={"code": tubes[0], "reason": ""})
    assert f'value="{tubes[0]}"' in refused(client, no_reason)


def test_the_freezer_page_plans_an_evacuation_and_records_an_excursion(
    login_as, tubes, second_freezer
):
    client = login_as("technician")
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    page = client.get("/storage/containers/FR-0001?plan=1").get_data(as_text=True)
    assert tubes[0] in page and "BX-0003" in page
    done = client.post(
        "/storage/containers/FR-0001/excursion",
        data={
            "started_at": "2026-11-28T02:00",
            "ended_at": "2026-11-28T04:00",
            "highest_c": "-55,5",
            "note": "door left open",
        },
        follow_redirects=True,
    )
    assert "Excursion recorded on 1 aliquot." in done.get_data(as_text=True)
    assert last_event(tubes[0]).kind == "TEMPERATURE_EXCURSION"


def test_a_rack_scan_through_the_api(api_as, tubes):
    client = api_as("technician")
    body = f"Position,Tube\nA1,{tubes[0]}\nA2,{tubes[1]}\n".encode()
    preview = client.post(
        "/api/v1/rack-scans?box=BX-0001", data=body, content_type="text/csv"
    ).get_json()
    assert {m["barcode"] for m in preview["moved"]} == {tubes[0], tubes[1]}
    applied = client.post(
        "/api/v1/rack-scans?box=BX-0001&apply=true", data=body, content_type="text/csv"
    )
    assert applied.status_code == 200
    again = client.post(
        "/api/v1/rack-scans?box=BX-0001", data=body, content_type="text/csv"
    ).get_json()
    assert {m["barcode"] for m in again["matched"]} == {tubes[0], tubes[1]}
