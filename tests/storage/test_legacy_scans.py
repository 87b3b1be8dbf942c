"""Storage takes a tube by the code of its old label (a tube of an imported inventory) as by
its barcode: scan-to-store and its confirmation, check-out, return, a rack scan, a list of
placements; another centre's old label is refused as another centre's barcode is."""

from __future__ import annotations

import html
import re
from io import BytesIO

import pytest

from biobank.errors import Forbidden, Invalid
from biobank.samples import services as samples
from biobank.storage import rack_import
from biobank.storage import services as storage
from tests import factories
from tests.answers import ok
from tests.pages import refused

OLD = "LIM-2019-00042"
SPACED = "ab 12/7"
PARIS_OLD = "PAR-OLD-7"
RACK = "BX-0096"
BOX = "BX-LIM"


def label_as_old(db, barcode: str, old_label: str) -> None:
    """What the inventory import leaves on an imported tube: the code of its old label."""
    samples.find_aliquot(barcode, actor=None).legacy_barcode = old_label
    db.session.commit()


@pytest.fixture
def imported(db, tubes):
    """LIM-001's baseline tubes (``tubes``), the first two with an old label; a Paris tube
    with one; a −80 °C freezer in Limoges with a box and a 96-tube rack. Returns (the
    Limoges barcodes, the Paris barcode)."""
    storage.create_container("room", "Lab", site="LIM", barcode="RM-LIM", actor=None)
    storage.create_container(
        "freezer",
        "Freezer",
        parent="RM-LIM",
        barcode="FR-LIM",
        temperature_class="-80",
        actor=None,
    )
    storage.create_container(
        "box",
        "Box",
        parent="FR-LIM",
        barcode=BOX,
        type_name="81-place 2-inch cryobox",
        actor=None,
    )
    storage.create_container_type("96-tube 2D rack", "box", rows=8, cols=12, actor=None)
    storage.create_container(
        "box", "Rack box", parent="FR-LIM", barcode=RACK, type_name="96-tube 2D rack", actor=None
    )
    label_as_old(db, tubes[0], OLD)
    label_as_old(db, tubes[1], SPACED)
    factories.participant("PAR", code="PAR-001")
    paris = factories.visit("PAR-001", "BL").aliquots[0].barcode
    db.session.commit()
    label_as_old(db, paris, PARIS_OLD)
    return tubes, paris


@pytest.fixture
def bench(login_as, imported):
    return login_as("technician", site="LIM")


def where(code):
    return samples.scan_aliquot(code, actor=None).location


def scan(client, code, box=BOX, **extra):
    """One scan on the scan-to-store page: the POST, then the page it redirects to."""
    answer = client.post("/storage/scan", data={"box": box, "code": code, **extra})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    return html.unescape(client.get(answer.location).get_data(as_text=True))


def pending_of(page) -> str | None:
    found = re.search(r'name="pending" value="([^"]*)"', page)
    return found.group(1) if found else None


NOTICE = f"This tube still carries its old label {OLD}: print its new label."


# --- scan-to-store -----------------------------------------------------------------------


def test_a_tube_is_stored_by_its_old_label_and_asked_to_be_relabelled(bench, imported):
    tubes, _ = imported
    page = scan(bench, f"{OLD.lower()}\r\n")
    assert f"{tubes[0]} stored at A1." in page
    assert NOTICE in page and f'href="/aliquots/{tubes[0]}/labels"' in page
    assert where(tubes[0]).endswith(f"({BOX}) › A1")
    # The same tube by its new label: nothing recorded, nothing asked.
    again = scan(bench, tubes[0])
    assert f"{tubes[0]} is already here at A1" in again and NOTICE not in again


def test_a_move_asked_by_an_old_label_is_confirmed_by_scanning_it_again(bench, imported):
    tubes, _ = imported
    storage.store(tubes[1], BOX, "A1", actor=None)
    asked = scan(bench, SPACED, target="C5")
    assert "Confirm to move it to C5" in asked and pending_of(asked) == SPACED
    # The same old label in capitals is the same tube: the move is confirmed.
    moved = scan(bench, SPACED.upper(), target="C5", pending=pending_of(asked))
    assert f"{tubes[1]} moved to C5 (it was at" in moved
    assert where(tubes[1]).endswith(f"({BOX}) › C5")


def test_another_centres_old_label_is_not_stored(bench, imported):
    _, paris = imported
    page = scan(bench, PARIS_OLD)
    assert f"{PARIS_OLD} is registered at another centre" in page and paris not in page
    assert where(paris) is None


def test_a_list_naming_one_tube_by_both_codes_is_refused_whole(imported):
    tubes, _ = imported
    with pytest.raises(Invalid) as refused_twice:
        storage.store_many([(tubes[0], "BX-0001", None), (OLD, "BX-0001", None)], actor=None)
    assert refused_twice.value.code == "storage.listed_twice"
    assert f"{tubes[0]} is listed twice" in str(refused_twice.value.message)
    assert where(tubes[0]) is None
    assert storage.store_many([(OLD, "BX-0001", "C3"), (SPACED, "BX-0001", None)], actor=None)
    assert where(tubes[0]).endswith("› C3") and where(tubes[1]).endswith("› A1")


# --- check-out and return --------------------------------------------------------------------


def test_check_out_and_return_by_the_old_label(bench, imported):
    tubes, _ = imported
    storage.store(tubes[0], BOX, "B2", actor=None)
    form = {"code": f" {OLD} ", "reason": "ELISA", "destination": "Lab B"}
    done = bench.post("/storage/check-out", data=form)
    page = html.unescape(bench.get(done.location).get_data(as_text=True))
    assert f"{tubes[0]} checked out." in page and NOTICE in page
    assert samples.find_aliquot(tubes[0], actor=None).status == "checked_out"
    # Checked out twice by its old label: refused, and the return offered by that code.
    again = refused(bench, bench.post("/storage/check-out", data=form))
    assert f"{tubes[0]} is already checked out" in again
    assert f'href="/storage/return?code={OLD}"' in again

    shown = html.unescape(bench.get(f"/storage/return?code={OLD.lower()}").get_data(as_text=True))
    assert f'name="code" value="{tubes[0]}"' in shown and NOTICE in shown
    back = bench.post("/storage/return", data={"code": tubes[0], "volume_ul": "450", "thawed": "1"})
    assert back.status_code == 303
    returned = samples.find_aliquot(OLD, actor=None)
    assert (returned.status, returned.volume_ul) == ("in_storage", 450)


# --- rack scans -----------------------------------------------------------------------------


def csv(*rows: tuple[str, str]) -> bytes:
    return ("\r\n".join(f"{RACK},{pos},{code}" for pos, code in rows) + "\r\n").encode()


def test_a_rack_scan_reads_old_labels_as_their_tubes(imported, make_user, db):
    tubes, paris = imported
    limoges = make_user("technician", site="LIM")
    storage.store(tubes[0], RACK, "A02", actor=None)
    # The scanner reads the old labels (its file gives codes in capitals).
    data = csv(("A01", OLD), ("A02", tubes[2]), ("A03", SPACED), ("A04", PARIS_OLD))
    found = rack_import.preview_rack(data, actor=limoges)
    assert not found.errors
    moved = [(m.position, m.barcode, m.from_position) for m in found.moved]
    assert moved == [("A01", tubes[0], "A02"), ("A02", tubes[2], None), ("A03", tubes[1], None)]
    assert [(u.position, u.barcode) for u in found.unknown] == [("A04", PARIS_OLD)]
    assert found.missing == []
    assert found.old_labels == {tubes[0]: OLD, tubes[1]: "AB 12/7"}
    assert paris not in str(found.as_dict())
    applied = rack_import.apply_rack(data, actor=limoges)
    db.session.commit()
    assert applied.applied
    assert where(tubes[0]).endswith(f"({RACK}) › A01") and where(tubes[1]).endswith("› A03")


def test_a_tube_read_by_both_its_labels_is_an_error(imported):
    tubes, _ = imported
    found = rack_import.preview_rack(csv(("A01", OLD), ("A02", tubes[0])), actor=None)
    assert [(e.position, e.barcode) for e in found.errors] == [("A02", tubes[0])]
    assert "two tubes with one label?" in str(found.errors[0].message)


def test_the_rack_scan_api_lists_the_tubes_read_by_their_old_label(imported, api_as):
    tubes, _ = imported
    technician = api_as("technician", site="LIM")
    answer = ok(
        technician.post(
            "/api/v1/rack-scans",
            data={"file": (BytesIO(csv(("A01", OLD))), "scan.csv")},
            content_type="multipart/form-data",
        )
    )
    assert answer["old_labels"] == [{"barcode": tubes[0], "legacy_barcode": OLD}]
    assert answer["moved"][0]["barcode"] == tubes[0]


def test_the_rack_scan_page_asks_for_the_new_labels(bench, imported):
    tubes, _ = imported
    shown = bench.post(
        "/storage/rack-scan",
        data={"file": (BytesIO(csv(("A01", OLD))), "scan.csv")},
        content_type="multipart/form-data",
    )
    page = html.unescape(shown.get_data(as_text=True))
    assert "1 tube was read by its old label: print its new label." in page
    assert f'href="/aliquots/{tubes[0]}/labels"' in page


def test_storing_another_centres_tube_by_its_old_label_is_refused_in_the_service(imported):
    limoges = factories.user("technician", site="LIM", password="correct horse battery")
    with pytest.raises(Forbidden):
        storage.store(PARIS_OLD, "BX-0001", actor=limoges)


def test_the_box_map_finds_a_tube_by_its_old_label(bench, imported):
    tubes, _ = imported
    storage.store(tubes[0], BOX, "B2", actor=None)
    text = html.unescape(bench.get(f"/boxes/{BOX}?find={OLD.lower()}").get_data(as_text=True))
    assert "well-found" in text and f"{OLD.lower()} is not in this box" not in text
    text = html.unescape(bench.get(f"/boxes/{BOX}?find={PARIS_OLD}").get_data(as_text=True))
    assert "well-found" not in text and f"{PARIS_OLD} is not in this box." in text
