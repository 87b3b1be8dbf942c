"""Every storage scan flow, scanned twice, reloaded or confirmed by the wrong key, ends with
a true record and a clear message: scan-to-store, moving a container, check-out, return,
rack-scan apply; and what the box map and the allocation page show."""

from __future__ import annotations

import html
import re

import pytest

from biobank.custody import services as custody
from biobank.samples import services as samples
from biobank.storage import rack_import
from biobank.storage import services as storage
from tests.pages import refused


@pytest.fixture
def bench(login_as, tubes):
    return login_as("technician")


def kinds(code):
    return [e.kind for e in custody.history(samples.find_aliquot(code, actor=None).id)]


def where(code):
    return samples.scan_aliquot(code, actor=None).location


def scan(client, code, box="BX-0001", **extra):
    """One scan on the scan-to-store page: the POST, then the page it redirects to."""
    answer = client.post("/storage/scan", data={"box": box, "code": code, **extra})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    return html.unescape(client.get(answer.location).get_data(as_text=True))


def pending_of(page) -> str | None:
    found = re.search(r'name="pending" value="([^"]*)"', page)
    return found.group(1) if found else None


# --- scan-to-store -----------------------------------------------------------------------


def test_a_tube_scanned_twice_stays_where_it_is_and_the_next_one_takes_the_next_place(bench, tubes):
    scan(bench, tubes[0])
    again = scan(bench, tubes[0])
    assert f"{tubes[0]} is already here at A1: nothing was recorded." in again
    assert "Confirm to move" not in again and pending_of(again) is None
    assert kinds(tubes[0]) == ["REGISTERED", "STORED"]
    page = scan(bench, tubes[1])
    assert f"{tubes[1]} stored at A2." in page
    assert where(tubes[0]).endswith("(BX-0001) › A1")
    assert where(tubes[1]).endswith("(BX-0001) › A2")


def test_a_tube_scanned_at_its_own_target_position_records_nothing(bench, tubes):
    scan(bench, tubes[0], target="C5")
    page = scan(bench, tubes[0], target="C5")
    assert f"{tubes[0]} is already here at C5" in page
    assert kinds(tubes[0]) == ["REGISTERED", "STORED"]


def test_a_tube_of_this_box_sent_to_another_position_asks_first(bench, tubes):
    scan(bench, tubes[0])
    asked = scan(bench, tubes[0], target="C5")
    assert "Confirm to move it to C5" in asked and pending_of(asked) == tubes[0]
    moved = scan(bench, tubes[0], target="C5", pending=pending_of(asked))
    assert f"{tubes[0]} moved to C5" in moved
    assert kinds(tubes[0])[-1] == "MOVED" and where(tubes[0]).endswith("› C5")


def test_a_move_is_confirmed_by_scanning_the_same_tube_again(bench, tubes):
    storage.store(tubes[0], "BX-0002", "A1", actor=None)
    asked = scan(bench, tubes[0])
    assert "Confirm to move" in asked and pending_of(asked) == tubes[0]
    assert 'class="scan-state scan-confirm"' in asked
    # The confirmation page keeps the focus on the scan input, never on the Move button.
    assert re.search(r'<input id="code"[^>]* autofocus', asked)
    assert not re.search(r"<button[^>]*autofocus", asked)
    moved = scan(bench, tubes[0].lower() + "\r\n", pending=pending_of(asked))
    assert f"{tubes[0]} moved to A1" in moved
    assert where(tubes[0]).endswith("(BX-0001) › A1")
    assert kinds(tubes[0])[-2:] == ["STORED", "MOVED"]


def test_any_other_scan_drops_the_pending_move_and_is_a_scan_of_its_own(bench, tubes):
    storage.store(tubes[0], "BX-0002", "A1", actor=None)
    asked = scan(bench, tubes[0])
    page = scan(bench, tubes[1], pending=pending_of(asked))
    assert f"{tubes[1]} stored at A1." in page and pending_of(page) is None
    assert where(tubes[0]).endswith("(BX-0002) › A1")  # left where it was
    assert kinds(tubes[0]) == ["REGISTERED", "STORED"]
    # The question is gone: scanning the first tube now asks again, it does not move it.
    asked_again = scan(bench, tubes[0])
    assert "Confirm to move" in asked_again
    assert where(tubes[0]).endswith("(BX-0002) › A1")


def test_a_reload_of_the_confirmation_page_drops_the_question(bench, tubes):
    storage.store(tubes[0], "BX-0002", "A1", actor=None)
    answer = bench.post("/storage/scan", data={"box": "BX-0001", "code": tubes[0]})
    first = bench.get(answer.location).get_data(as_text=True)
    assert pending_of(first) == tubes[0]
    reloaded = bench.get(answer.location).get_data(as_text=True)
    assert pending_of(reloaded) is None and "Confirm to move" not in reloaded


def test_the_move_button_still_confirms_on_an_explicit_click(bench, tubes):
    storage.store(tubes[0], "BX-0002", "A1", actor=None)
    page = scan(bench, tubes[0], move="1")
    assert f"{tubes[0]} moved to A1" in page


def test_a_checked_out_tube_is_not_stored_by_a_scan_but_sent_to_its_return(bench, tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    storage.check_out(tubes[0], "ELISA", actor=None)
    page = scan(bench, tubes[0])
    assert f"{tubes[0]} is checked out: nothing was recorded." in page
    assert f'href="/storage/return?code={tubes[0]}"' in page
    assert samples.scan_aliquot(tubes[0], actor=None).status == "checked_out"
    assert kinds(tubes[0])[-1] == "CHECKED_OUT"


def test_scanning_another_box_label_goes_on_with_that_box(bench, tubes):
    answer = bench.post("/storage/scan", data={"box": "BX-0001", "code": "bx-0002"})
    assert answer.location.endswith("/storage/scan?box=BX-0002")
    page = scan(bench, tubes[0], box="BX-0002")
    assert where(tubes[0]).endswith("(BX-0002) › A1") and "stored at A1" in page


def test_a_position_outside_the_box_is_said_plainly(bench, tubes):
    page = scan(bench, "J1")
    assert 'position "J1" is outside' in page
    assert 'data-state="position.invalid"' in page


def test_the_free_wells_of_the_scan_page_choose_the_next_position(bench, tubes):
    scan(bench, tubes[0])
    page = bench.get("/storage/scan?box=BX-0001").get_data(as_text=True)
    assert 'href="/storage/scan?box=BX-0001&amp;target=C5"' in page
    # The filled well is a link to its details; no link chooses its position.
    assert 'target=A1"' not in page and 'href="#tube-A1"' in page


# --- the API -----------------------------------------------------------------------------


def test_put_position_where_the_tube_already_is_answers_unchanged_and_records_nothing(
    api_as, tubes
):
    client = api_as("technician")
    url = f"/api/v1/aliquots/{tubes[0]}/position"
    first = client.put(url, json={"box": "BX-0001", "position": "B4"}).get_json()
    assert first["unchanged"] is False
    again = client.put(url, json={"box": "BX-0001", "position": "b04"})
    assert again.status_code == 200 and again.get_json()["unchanged"] is True
    assert again.get_json()["position"] == "B4" and again.get_json()["moved_from"] is None
    same_box = client.put(url, json={"box": "BX-0001"}).get_json()
    assert same_box["unchanged"] is True and same_box["position"] == "B4"
    assert kinds(tubes[0]) == ["REGISTERED", "STORED"]


def test_moving_a_container_where_it_already_is_is_unchanged_through_the_api(api_as, tubes):
    client = api_as("technician")
    storage.store(tubes[0], "BX-0001", actor=None)
    _commit()
    moved = client.post("/api/v1/containers/BX-0001/move", json={"parent": "RK-0001"})
    assert moved.status_code == 200 and moved.get_json()["unchanged"] is True
    assert kinds(tubes[0]) == ["REGISTERED", "STORED"]


def _commit():
    from biobank.extensions import db

    db.session.commit()


# --- moving a container, checking out, returning ------------------------------------------


def test_the_same_container_move_twice_records_one_move(bench, tubes, db):
    storage.create_container("rack", "Rack B", parent="SH-0001", barcode="RK-0002", actor=None)
    storage.store(tubes[0], "BX-0001", actor=None)
    db.session.commit()
    form = {"container": "BX-0001", "parent": "RK-0002"}
    first = bench.post("/storage/move", data=form, follow_redirects=True)
    assert "BX-0001 moved into RK-0002." in first.get_data(as_text=True)
    second = bench.post("/storage/move", data=form, follow_redirects=True)
    text = second.get_data(as_text=True)
    assert "BX-0001 is already in RK-0002: nothing was moved." in text
    assert kinds(tubes[0]) == ["REGISTERED", "STORED", "MOVED"]


def test_a_refused_move_empties_and_focuses_the_field_it_names(bench, tubes):
    answer = bench.post("/storage/move", data={"container": "BX-0001", "parent": "RK-9999"})
    page = refused(bench, answer)
    assert re.search(r'id="container" name="container" value="BX-0001"', page)
    assert re.search(r'id="parent" name="parent" value=""[^>]* autofocus', page)
    assert "No container with barcode RK-9999" in page


def test_a_second_check_out_records_nothing_and_offers_the_return(bench, tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    form = {"code": tubes[0], "reason": "ELISA", "destination": "Lab B"}
    first = bench.post("/storage/check-out", data=form)
    done = html.unescape(bench.get(first.location).get_data(as_text=True))
    assert f"{tubes[0]} checked out." in done
    assert f'href="/storage/return?code={tubes[0]}"' in done
    second = bench.post("/storage/check-out", data=form)
    page = refused(bench, second)
    assert f"{tubes[0]} is already checked out: nothing was recorded." in page
    assert f'href="/storage/return?code={tubes[0]}"' in page
    assert kinds(tubes[0]).count("CHECKED_OUT") == 1


def test_the_check_out_page_takes_the_tube_from_the_box_map(bench, tubes):
    page = bench.get(f"/storage/check-out?code={tubes[0].lower()}").get_data(as_text=True)
    assert f'id="code" name="code" value="{tubes[0]}"' in page
    assert re.search(r'id="reason"[^>]* autofocus', page)


def test_the_return_page_fills_in_the_volume_and_ticks_thawed(bench, tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    storage.check_out(tubes[0], "ELISA", actor=None)
    page = bench.get(f"/storage/return?code={tubes[0].lower()}").get_data(as_text=True)
    assert re.search(r'id="volume_ul" name="volume_ul" value="500"', page)
    assert re.search(r'id="thawed" name="thawed" value="1" checked', page)
    assert f'name="code" value="{tubes[0]}"' in page
    assert "(BX-0001) › A1" in html.unescape(page)


def test_a_second_return_records_nothing_and_says_where_the_tube_is(bench, tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    storage.check_out(tubes[0], "ELISA", actor=None)
    form = {"code": tubes[0], "volume_ul": "350", "thawed": "1"}
    first = bench.post("/storage/return", data=form, follow_redirects=True)
    assert f"{tubes[0]} is back at" in first.get_data(as_text=True)
    second = bench.post("/storage/return", data=form)
    page = refused(bench, second)
    assert f"{tubes[0]} is already back in storage, at " in page
    assert "nothing was recorded" in page
    aliquot = samples.scan_aliquot(tubes[0], actor=None)
    assert (aliquot.volume_ul, aliquot.freeze_thaw_count) == (350, 1)
    assert kinds(tubes[0]).count("RETURNED") == 1


def test_a_refused_return_keeps_what_was_typed_and_the_thaw_as_it_was(bench, tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    storage.check_out(tubes[0], "ELISA", actor=None)
    answer = bench.post("/storage/return", data={"code": tubes[0], "volume_ul": "900"})
    page = refused(bench, answer)
    assert "between 0 and 500" in page
    assert re.search(r'id="volume_ul" name="volume_ul" value="900"', page)
    assert not re.search(r'id="thawed" name="thawed" value="1" checked', page)


def test_scanning_a_tube_that_is_not_out_on_the_return_page_says_so(bench, tubes):
    page = html.unescape(bench.get(f"/storage/return?code={tubes[0]}").get_data(as_text=True))
    assert "is not checked out (it is registered)" in page
    assert 'name="volume_ul"' not in page


# --- rack-scan apply -----------------------------------------------------------------------


def test_applying_the_same_rack_scan_twice_records_it_once(bench, tubes):
    data = f"Position,Tube\nA1,{tubes[0]}\nA2,{tubes[1]}\n".encode()
    kept = {"data": rack_import_keep(data), "box": "BX-0001", "confirm": "1"}
    first = bench.post("/storage/rack-scan", data=kept, follow_redirects=True)
    assert "2 tubes recorded where they were read" in first.get_data(as_text=True)
    second = bench.post("/storage/rack-scan", data=kept, follow_redirects=True)
    assert "The box already matches this scan: nothing more was recorded in BX-0001." in (
        second.get_data(as_text=True)
    )
    assert kinds(tubes[0]) == ["REGISTERED", "STORED"]


def rack_import_keep(data: bytes) -> str:
    from biobank.storage.rack_views import _keep

    return _keep(data)


def test_the_rack_scan_service_applied_twice_is_unchanged(tubes):
    data = f"Position,Tube\nA1,{tubes[0]}\n".encode()
    rack_import.apply_rack(data, box="BX-0001", actor=None)
    again = rack_import.apply_rack(data, box="BX-0001", actor=None)
    assert again.to_apply == [] and kinds(tubes[0]) == ["REGISTERED", "STORED"]


# --- the box map ---------------------------------------------------------------------------


def test_the_box_map_shows_reserved_and_checked_out_tubes_in_words(bench, tubes, reserve):
    for code in tubes[:3]:
        storage.store(code, "BX-0001", actor=None)
    request = reserve(tubes[1])
    storage.check_out(tubes[2], "ELISA", actor=None)
    box = storage.box_map("BX-0001", actor=None)
    assert [w.state for w in box.wells[:4]] == ["available", "reserved", "checked-out", "empty"]
    assert box.wells[1].reserved_for == request
    page = bench.get("/boxes/BX-0001").get_data(as_text=True)
    reserved = page[page.index('data-position="A2"') : page.index('data-position="A3"')]
    assert "◆ reserved" in reserved and 'data-state="reserved"' in reserved
    assert 'class="well well-reserved"' in page
    out = page[page.index('data-position="A3"') : page.index('data-position="A4"')]
    assert "↗ out" in out


def test_a_filled_well_links_to_the_tubes_details_and_actions(bench, tubes, reserve):
    storage.store(tubes[0], "BX-0001", actor=None)
    storage.store(tubes[1], "BX-0001", actor=None)
    request = reserve(tubes[1])
    storage.check_out(tubes[0], "ELISA", actor=None)
    page = html.unescape(bench.get("/boxes/BX-0001").get_data(as_text=True))
    first = page[page.index('id="tube-A1"') :]
    first = first[: first.index("</section>")]
    for fact in (tubes[0], "LIM-001", "BL", "SER", "n° 1/5", "checked out", "no request"):
        assert fact in first, fact
    assert f'href="/aliquots/{tubes[0]}"' in first
    assert f'href="/storage/return?code={tubes[0]}"' in first
    second = page[page.index('id="tube-A2"') :]
    second = second[: second.index("</section>")]
    assert f"request {request}" in second and "n° 2/5" in second
    assert f'href="/storage/check-out?code={tubes[1]}"' in second
    assert 'href="#tube-A1"' in page and 'href="#tube-A2"' in page


def test_a_free_well_of_the_box_page_is_no_tab_stop(bench, tubes):
    storage.store(tubes[0], "BX-0001", actor=None)
    page = bench.get("/boxes/BX-0001").get_data(as_text=True)
    free = page[page.index('data-position="A2"') : page.index('data-position="A3"')]
    assert "<a" not in free and "tabindex" not in free and "<button" not in free
    assert "tabindex" not in page[page.index('id="box-map"') :]


def test_the_box_map_api_says_the_aliquot_number_and_the_reservation(api_as, tubes, reserve):
    storage.store(tubes[1], "BX-0001", actor=None)
    request = reserve(tubes[1])
    wells = api_as("technician").get("/api/v1/boxes/BX-0001").get_json()["positions"]
    assert wells[0]["series_number"] == 2 and wells[0]["series_total"] == 5
    assert wells[0]["reserved_for"] == request and wells[0]["state"] == "reserved"
    assert wells[1]["state"] == "empty" and wells[1]["reserved_for"] is None


# --- the allocation page ---------------------------------------------------------------------


def test_the_proposed_positions_name_the_sample_type_and_the_aliquot_number(bench, tubes):
    page = bench.get("/participants/LIM-001/visits/BL/allocation").get_data(as_text=True)
    rows = re.findall(
        r'<td class="mono">(\w+)<input[^>]*></td>\s*<td>([^<]+)</td><td>([\d/]+)</td>', page
    )
    words = {"SER": "Serum (SER)", "PL1": "Plasma, single spun (PL1)"}
    assert sorted(rows) == sorted(
        (code, words["SER" if n < 5 else "PL1"], f"{n % 5 + 1}/5") for n, code in enumerate(tubes)
    )


def test_the_proposals_api_names_the_sample_type_and_the_aliquot_number(api_as, tubes):
    plan = (
        api_as("technician")
        .post("/api/v1/allocations", json={"participant": "LIM-001", "visit": "BL"})
        .get_json()
    )
    first = next(p for p in plan["proposals"] if p["barcode"] == tubes[0])
    assert (first["sample_type"], first["series"]) == ("SER", "1/5")
