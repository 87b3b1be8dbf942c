"""The storage pages, driven as a scanner drives them."""

from __future__ import annotations

import pytest

from biobank.storage import services as storage


@pytest.fixture
def bench(login_as, tubes):
    return login_as("technician")


def scan(client, code, box="BX-0001", **extra):
    return client.post(
        "/storage/scan", data={"box": box, "code": code, **extra}, follow_redirects=True
    )


def well_of(barcode):
    return next(w for w in storage.box_map("BX-0001", actor=None).wells if w.barcode == barcode)


def test_scanning_tubes_fills_the_box_in_order(bench, tubes):
    page = scan(bench, tubes[0])
    assert f"{tubes[0]} stored at A1." in page.get_data(as_text=True)
    scan(bench, tubes[1].lower() + "\r\n")
    assert well_of(tubes[1]).position == "A2"
    assert "well-found" in page.get_data(as_text=True)


def test_a_position_scanned_first_receives_the_next_tube(bench, tubes):
    page = scan(bench, "e05")
    assert "position E5" in page.get_data(as_text=True)
    scan(bench, tubes[0], target="E5")
    assert well_of(tubes[0]).position == "E5"


def test_a_tube_stored_elsewhere_is_moved_only_after_confirmation(bench, tubes):
    scan(bench, tubes[0], box="BX-0002")
    asked = scan(bench, tubes[0]).get_data(as_text=True)
    assert "Confirm to move" in asked and f"Move {tubes[0]} into this box" in asked
    scan(bench, tubes[0], move="1")
    assert well_of(tubes[0]).position == "A1"


def test_an_unknown_box_is_said_plainly(bench):
    page = bench.get("/storage/scan?box=BX-9999")
    assert page.status_code == 404 and "No box with barcode BX-9999" in page.get_data(as_text=True)


def test_the_box_map_shows_each_tube_and_finds_one(bench, tubes):
    scan(bench, tubes[0])
    text = bench.get(f"/boxes/BX-0001?find={tubes[0]}").get_data(as_text=True)
    assert text.count("data-position=") == 81
    assert f'data-barcode="{tubes[0]}"' in text and "well-found" in text
    assert "LIM-001" in text and "80 free positions" in text


def test_the_overview_lists_freezers_boxes_and_capacity(bench, tubes):
    scan(bench, tubes[0])
    text = bench.get("/storage").get_data(as_text=True)
    assert "Freezer −80 n°1" in text and "BX-0002" in text
    assert "81-place 2-inch cryobox" in text
