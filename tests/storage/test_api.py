"""The storage API as scripts use it."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.races import ROUNDS, THREADS, race


@pytest.fixture
def client(api_as, tubes):
    return api_as("technician")


def test_put_position_stores_then_moves_and_says_where(client, tubes):
    stored = client.put(
        f"/api/v1/aliquots/{tubes[0]}/position", json={"box": "BX-0001", "position": "b4"}
    )
    assert stored.status_code == 200, stored.get_json()
    assert stored.get_json()["position"] == "B4"
    assert stored.get_json()["location"].endswith("(BX-0001) › B4")
    moved = client.put(
        f"/api/v1/aliquots/{tubes[0]}/position", json={"box": "BX-0002", "position": "A1"}
    )
    assert moved.status_code == 200 and moved.get_json()["moved_from"].endswith("B4")
    scanned = client.get(f"/api/v1/aliquots/{tubes[0]}").get_json()
    assert scanned["location"].endswith("(BX-0002) › A1") and scanned["status"] == "in_storage"


def test_put_on_a_taken_position_is_a_409_in_the_error_shape(client, tubes):
    client.put(f"/api/v1/aliquots/{tubes[0]}/position", json={"box": "BX-0001", "position": "A1"})
    taken = client.put(
        f"/api/v1/aliquots/{tubes[1]}/position", json={"box": "BX-0001", "position": "A1"}
    )
    assert taken.status_code == 409
    error = taken.get_json()["error"]
    assert error["code"] == "position.taken" and tubes[0] in error["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"box": "BX-9999", "position": "A1"}, 404),
        ({"box": "BX-0001", "position": "Z9"}, 400),
        ({"position": "A1"}, 400),
    ],
)
def test_put_with_a_bad_box_or_position(client, tubes, body, status):
    assert client.put(f"/api/v1/aliquots/{tubes[0]}/position", json=body).status_code == status


def test_delete_position_checks_out_with_a_reason(client, tubes):
    client.put(f"/api/v1/aliquots/{tubes[0]}/position", json={"box": "BX-0001"})
    assert client.delete(f"/api/v1/aliquots/{tubes[0]}/position", json={}).status_code == 400
    out = client.delete(
        f"/api/v1/aliquots/{tubes[0]}/position",
        json={"reason": "VEGF ELISA run 12", "destination": "Immunology lab"},
    )
    assert out.status_code == 200 and out.get_json()["status"] == "checked_out"
    back = client.post(
        f"/api/v1/aliquots/{tubes[0]}/return", json={"volume_ul": 420, "thawed": True}
    )
    assert back.status_code == 200 and back.get_json()["position"] == "A1"
    after = client.get(f"/api/v1/aliquots/{tubes[0]}").get_json()
    assert (after["volume_ul"], after["freeze_thaw_count"]) == (420, 1)


def test_boxes_are_listed_and_mapped(client, tubes):
    client.put(f"/api/v1/aliquots/{tubes[0]}/position", json={"box": "BX-0001", "position": "B2"})
    listing = client.get("/api/v1/containers?kind=box").get_json()
    assert listing["total"] == 3
    assert {"barcode": "BX-0001", "name": "Box 1", "rows": 9, "cols": 9, "free": 80} in (
        listing["items"]
    )
    box = client.get("/api/v1/boxes/BX-0001").get_json()
    assert len(box["positions"]) == 81
    held = {p["position"]: p["barcode"] for p in box["positions"] if p["barcode"]}
    assert held == {"B2": tubes[0]}


def test_containers_are_created_through_the_api(api_as, freezer):
    manager = api_as("manager")
    created = manager.post(
        "/api/v1/containers",
        json={
            "kind": "box",
            "name": "Plasma 3",
            "parent": "RK-0001",
            "type": "81-place 2-inch cryobox",
        },
    )
    assert created.status_code == 201 and created.get_json()["parent"] == "RK-0001"
    refused = manager.post(
        "/api/v1/containers", json={"kind": "rack", "name": "R", "parent": "BX-0001"}
    )
    assert refused.status_code == 400 and "parent" in refused.get_json()["error"]["fields"]
    assert (
        api_as("technician")
        .post("/api/v1/containers", json={"kind": "box", "name": "x"})
        .status_code
        == 403
    )


@pytest.mark.slow
def test_racing_technicians_never_share_a_position(app, db, tubes):
    """Every round, THREADS tubes race for one position: exactly one wins, the others get a
    conflict naming the position, and the box holds exactly one tube there."""
    from biobank.storage import services as storage

    positions = storage.grid_of(storage.get_container("BX-0002", actor=None)).all_labels()
    for round_ in range(ROUNDS):
        target = positions[round_]
        contenders = tubes[:THREADS] if round_ % 2 == 0 else tubes[THREADS : 2 * THREADS]

        def put(n, target=target, contenders=contenders):
            storage.store(contenders[n], "BX-0002", target, move=True, actor=None)

        outcomes = race(app, put)
        assert outcomes == Counter({"ok": 1, "Conflict": THREADS - 1}), (target, outcomes)
        db.session.expire_all()
        wells = {w.position: w.barcode for w in storage.box_map("BX-0002", actor=None).wells}
        assert wells[target] in contenders
