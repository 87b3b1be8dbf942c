"""Rack-scanner import: the preview's categories, applying it, the command and the page."""

from __future__ import annotations

import json
from io import BytesIO

import pytest
import sqlalchemy as sa

from biobank.custody import services as custody
from biobank.errors import Invalid, NotFound
from biobank.extensions import db as _db
from biobank.samples import barcodes
from biobank.samples import services as samples
from biobank.storage import rack_import
from biobank.storage import services as storage
from biobank.storage.rack_views import _keep
from biobank.study import services as study
from tests.pages import refused

RACK = "BX-0096"
KEYS = ["rack", "matched", "moved", "missing", "unexpected", "unknown", "no_read", "errors"]


@pytest.fixture
def rack(freezer, db):
    """An 8 × 12 box (a 96-tube 2D rack) in the −80 °C freezer's rack."""
    storage.create_container_type("96-tube 2D rack", "box", rows=8, cols=12, actor=None)
    storage.create_container(
        "box", "Rack box", parent="RK-0001", barcode=RACK, type_name="96-tube 2D rack", actor=None
    )
    db.session.commit()
    return RACK


def csv(*rows: tuple[str, str], rack: str | None = RACK) -> bytes:
    """A headerless scanner file: rack, position, tube (or position, tube without a rack)."""
    lines = [f"{rack},{pos},{code}" if rack else f"{pos},{code}" for pos, code in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def unknown_code(taken) -> str:
    code = barcodes.new_aliquot_barcode()
    while code in taken:
        code = barcodes.new_aliquot_barcode()
    return code


def bad_check(code: str) -> str:
    return code[:-1] + next(c for c in "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ" if c != code[-1])


def position_of(code):
    aliquot = samples.find_aliquot(code, actor=None)
    row = _db.session.execute(
        sa.select(storage.StoredPosition).where(storage.StoredPosition.aliquot_id == aliquot.id)
    ).scalar()
    if row is None:
        return None
    return row.box.barcode, storage.grid_of(row.box).label(row.row, row.col)


def events(code):
    return custody.history(samples.find_aliquot(code, actor=None).id)


def preview(data, **kwargs):
    return rack_import.preview_rack(data, actor=None, **kwargs)


# --- each category -----------------------------------------------------------------------


def test_a_tube_where_the_database_has_it_is_matched(rack, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)
    found = preview(csv(("A01", tubes[0]), ("A02", "NO TUBE")))
    assert [m.as_dict() for m in found.matched] == [
        {"position": "A01", "barcode": tubes[0], "line": 1}
    ]
    assert found.in_order and found.counts["matched"] == 1


def test_a_tube_of_another_box_or_never_stored_is_moved_with_its_from_and_to(rack, tubes):
    storage.store(tubes[0], "BX-0001", "B4", actor=None)
    found = preview(csv(("A1", tubes[0]), ("a02", tubes[1])))
    first, second = (m.as_dict() for m in found.moved)
    assert first["position"] == "A01" and first["barcode"] == tubes[0]
    assert first["from"].endswith("(BX-0001) › B4")
    assert (first["from_box"], first["from_position"]) == ("BX-0001", "B4")
    assert first["to"] == f"Freezer −80 n°1 › Shelf 1 › Rack A › Rack box ({RACK}) › A01"
    assert first["blocked_by"] is None
    assert second["position"] == "A02" and second["from"] is None and second["from_box"] is None


def test_a_tube_the_scan_did_not_find_is_missing_with_what_was_there_instead(rack, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.store(tubes[1], RACK, "A02", actor=None)
    storage.store(tubes[2], RACK, "H12", actor=None)  # absent from the file: not seen either
    found = preview(csv(("A01", "NO TUBE"), ("A02", tubes[3])))
    assert [m.as_dict() for m in found.missing] == [
        {"position": "A01", "barcode": tubes[0], "scanned": None},
        {"position": "A02", "barcode": tubes[1], "scanned": tubes[3]},
        {"position": "H12", "barcode": tubes[2], "scanned": None},
    ]


def test_swapped_tubes_are_two_moves_and_nothing_missing(rack, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.store(tubes[1], RACK, "A02", actor=None)
    found = preview(csv(("A01", tubes[1]), ("A02", tubes[0])))
    assert [(m.position, m.barcode, m.from_position) for m in found.moved] == [
        ("A01", tubes[1], "A02"),
        ("A02", tubes[0], "A01"),
    ]
    assert found.missing == [] and found.to_apply == found.moved


def test_checked_out_and_gone_tubes_are_unexpected_and_never_moved(rack, tubes, db):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.check_out(tubes[0], "VEGF ELISA", actor=None)
    gone = samples.find_aliquot(tubes[1], actor=None)
    gone.status = "destroyed"  # as the destruction service leaves it
    db.session.flush()
    found = preview(csv(("A01", tubes[0]), ("A02", tubes[1])))
    assert [(u.position, u.reason, u.status) for u in found.unexpected] == [
        ("A01", "aliquot.checked_out", "checked_out"),
        ("A02", "aliquot.not_storable", "destroyed"),
    ]
    assert found.unexpected[0].as_dict()["location"].endswith(f"({RACK}) › A01")
    assert found.moved == [] and found.missing == []  # a checked-out place is kept, not missing


def test_withdrawn_consent_is_unexpected_when_the_tube_would_move(rack, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)
    study.withdraw_consent(
        "LIM-001", study.get_participant("LIM-001", actor=None).included_on, actor=None
    )
    found = preview(csv(("A01", tubes[0]), ("A02", tubes[1])))
    assert [m.barcode for m in found.matched] == [tubes[0]]  # consent is not about its place
    assert [(u.barcode, u.reason) for u in found.unexpected] == [(tubes[1], "consent.withdrawn")]
    assert "consent" in found.unexpected[0].as_dict()["message"]


def test_a_freezer_too_warm_makes_a_tube_unexpected(rack, tubes):
    found = preview(csv(("A1", tubes[0]), rack="BX-0020"))
    assert [(u.barcode, u.reason) for u in found.unexpected] == [(tubes[0], "storage.temperature")]


def test_a_valid_barcode_of_no_aliquot_is_unknown(rack, tubes):
    stranger = unknown_code(tubes)
    found = preview(csv(("C03", stranger)))
    assert [u.as_dict() for u in found.unknown] == [
        {"position": "C03", "barcode": stranger, "line": 1}
    ]


def test_an_unread_position_is_no_read_with_what_the_database_expects_and_not_missing(rack, tubes):
    storage.store(tubes[0], RACK, "B02", actor=None)
    found = preview(csv(("B02", "NO READ"), ("B03", "NO READ")))
    assert [n.as_dict() for n in found.no_read] == [
        {"position": "B02", "barcode": None, "line": 1, "expected": tubes[0]},
        {"position": "B03", "barcode": None, "line": 2, "expected": None},
    ]
    assert found.missing == []


def test_bad_positions_barcodes_and_duplicates_are_errors_naming_the_line(rack, tubes):
    found = preview(
        csv(("A01", tubes[0]), ("I01", tubes[1]), ("A13", tubes[2]), ("B01", bad_check(tubes[3])))
        + f"{RACK},B02,{tubes[0]}\n{RACK},B03,AB!\n".encode()
    )
    errors = [(e.line, e.position, str(e.message)) for e in found.errors]
    assert errors[0][:2] == (2, "I01") and "not in box BX-0096 (8 × 12)" in errors[0][2]
    assert errors[1][:2] == (3, "A13")
    assert errors[2] == (4, "B01", "not a valid barcode (check character)")
    assert errors[3][:2] == (5, "B02") and "also read at A01 (line 1)" in errors[3][2]
    assert errors[4] == (6, "B03", "not a valid barcode (characters)")
    assert [m.barcode for m in found.moved] == [tubes[0]]


def test_the_box_comes_from_the_file_else_from_the_box_argument(rack, tubes):
    assert preview(csv(("A1", tubes[0]), rack=None), box="bx-0096").rack == RACK
    with pytest.raises(Invalid, match="does not name its rack") as unnamed:
        preview(csv(("A1", tubes[0]), rack=None))
    assert unnamed.value.code == "rackscan.no_box"
    with pytest.raises(Invalid, match="scan of rack BX-0096, not of box BX-0001"):
        preview(csv(("A1", tubes[0])), box="BX-0001")
    with pytest.raises(NotFound, match="No box with barcode BX-0404"):
        preview(csv(("A1", tubes[0]), rack="BX-0404"))


def test_an_unreadable_file_is_invalid_naming_the_line(rack):
    with pytest.raises(Invalid, match=r"line 2.*Position.*empty") as refused:
        preview(b"Position,Barcode\n,ABC\n")
    assert refused.value.code == "rackscan.unreadable" and "line 2" in refused.value.fields["file"]


def test_the_comparison_costs_the_same_queries_for_two_tubes_or_ten(rack, tubes, db):
    for n, code in enumerate(tubes[:5], start=1):
        storage.store(code, "BX-0001", f"A{n}", actor=None)
    db.session.commit()

    def queries(codes):
        data = csv(*((f"B{n:02d}", code) for n, code in enumerate(codes, start=1)))
        count = 0

        def counted(*_):
            nonlocal count
            count += 1

        sa.event.listen(db.engine, "before_cursor_execute", counted)
        try:
            preview(data)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", counted)
        db.session.expire_all()
        return count

    assert queries(tubes[:2]) == queries(tubes)


def test_the_preview_writes_nothing(rack, tubes, db):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    before = [len(events(code)) for code in tubes]
    preview(csv(("A01", tubes[0]), ("A02", tubes[1])))
    assert [len(events(code)) for code in tubes] == before
    assert position_of(tubes[0]) == ("BX-0001", "A1") and position_of(tubes[1]) is None


# --- applying ----------------------------------------------------------------------------


def test_applying_a_swap_moves_both_tubes_with_one_moved_event_each(rack, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.store(tubes[1], RACK, "A02", actor=None)
    applied = rack_import.apply_rack(csv(("A01", tubes[1]), ("A02", tubes[0])), actor=None)
    assert applied.applied and len(applied.to_apply) == 2
    assert position_of(tubes[0]) == (RACK, "A02") and position_of(tubes[1]) == (RACK, "A01")
    for code, old, new in ((tubes[0], "A01", "A02"), (tubes[1], "A02", "A01")):
        history = events(code)
        assert [e.kind for e in history] == ["REGISTERED", "STORED", "MOVED"]
        assert history[-1].from_location.endswith(f"({RACK}) › {old}")
        assert history[-1].to_location.endswith(f"({RACK}) › {new}")
    assert custody.verify().intact
    assert preview(csv(("A01", tubes[1]), ("A02", tubes[0]))).in_order


def test_applying_a_rotation_a_chain_and_new_tubes_at_once(rack, tubes):
    # A01 → A02 → A03 → A01 rotated; B01 → B02 (free); a tube from BX-0001; a new one.
    for code, pos in zip(tubes[:4], ("A01", "A02", "A03", "B01"), strict=True):
        storage.store(code, RACK, pos, actor=None)
    storage.store(tubes[4], "BX-0001", "C3", actor=None)
    scan = csv(
        ("A01", tubes[2]),
        ("A02", tubes[0]),
        ("A03", tubes[1]),
        ("B01", tubes[4]),
        ("B02", tubes[3]),
        ("B03", tubes[5]),
    )
    applied = rack_import.apply_rack(scan, actor=None)
    assert len(applied.to_apply) == 6
    expected = ["A02", "A03", "A01", "B02", "B01", "B03"]
    assert [position_of(code)[1] for code in tubes[:6]] == expected
    assert [events(code)[-1].kind for code in tubes[:6]] == ["MOVED"] * 5 + ["STORED"]
    assert events(tubes[4])[-1].from_location.endswith("(BX-0001) › C3")
    assert events(tubes[5])[-1].from_location is None
    assert all(len([e for e in events(c) if e.kind == "MOVED"]) == 1 for c in tubes[:5])
    assert samples.find_aliquot(tubes[5], actor=None).status == "in_storage"
    assert custody.verify().intact
    assert preview(scan).in_order


def test_a_move_onto_the_place_of_a_missing_tube_is_blocked_and_the_missing_tube_stays(rack, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)  # not in the scan: missing
    storage.store(tubes[1], RACK, "A02", actor=None)  # read at A01: blocked by tubes[0]
    storage.store(tubes[2], RACK, "A03", actor=None)  # read at A02: blocked in turn
    found = preview(csv(("A01", tubes[1]), ("A02", tubes[2]), ("A04", tubes[3])))
    assert [(m.barcode, m.blocked_by) for m in found.moved] == [
        (tubes[1], tubes[0]),
        (tubes[2], tubes[1]),
        (tubes[3], None),
    ]
    applied = rack_import.apply_rack(
        csv(("A01", tubes[1]), ("A02", tubes[2]), ("A04", tubes[3])), actor=None
    )
    assert [m.barcode for m in applied.to_apply] == [tubes[3]]
    assert [m.barcode for m in applied.missing] == [tubes[0]]
    assert [position_of(code)[1] for code in tubes[:4]] == ["A01", "A02", "A03", "A04"]
    assert custody.verify().intact


def test_apply_is_refused_when_the_scan_has_errors_and_nothing_is_written(rack, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)
    before = [len(events(code)) for code in tubes]
    scan = csv(("A01", tubes[1]), ("A02", tubes[0]), ("A03", bad_check(tubes[2])))
    with pytest.raises(Invalid, match=r"Nothing was applied.*line 3, A03") as refused:
        rack_import.apply_rack(scan, actor=None)
    assert refused.value.code == "rackscan.errors"
    assert [len(events(code)) for code in tubes] == before
    assert position_of(tubes[0]) == (RACK, "A01") and position_of(tubes[1]) is None


def test_unexpected_unknown_and_missing_tubes_are_left_as_they_are(rack, tubes, db):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.store(tubes[1], RACK, "A02", actor=None)
    storage.check_out(tubes[1], "VEGF ELISA", actor=None)
    stranger = unknown_code(tubes)
    applied = rack_import.apply_rack(csv(("B01", tubes[1]), ("B02", stranger)), actor=None)
    assert [m.barcode for m in applied.missing] == [tubes[0]]
    assert position_of(tubes[0]) == (RACK, "A01") and position_of(tubes[1]) == (RACK, "A02")
    assert samples.find_aliquot(tubes[1], actor=None).status == "checked_out"


# --- the command -------------------------------------------------------------------------


def run(app, tmp_path, data, *args):
    path = tmp_path / "scan.csv"
    path.write_bytes(data)
    return app.test_cli_runner().invoke(args=["storage", "rack-scan", str(path), *args])


def test_the_command_prints_the_preview_as_json_with_exactly_these_keys(app, rack, tubes, tmp_path):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.store(tubes[1], RACK, "A02", actor=None)
    stranger = unknown_code(tubes)
    data = csv(
        ("A01", tubes[0]),
        ("A02", "NO TUBE"),
        ("A03", tubes[2]),
        ("A04", stranger),
        ("A05", "NO READ"),
        ("Z01", tubes[3]),
    )
    result = run(app, tmp_path, data, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert list(shown) == KEYS
    assert shown["rack"] == RACK
    assert shown["matched"] == [{"position": "A01", "barcode": tubes[0], "line": 1}]
    assert [(m["position"], m["barcode"], m["from"]) for m in shown["moved"]] == [
        ("A03", tubes[2], None)
    ]
    assert shown["moved"][0]["to"].endswith(f"({RACK}) › A03")
    assert shown["missing"] == [{"position": "A02", "barcode": tubes[1], "scanned": None}]
    assert shown["unexpected"] == []
    assert shown["unknown"] == [{"position": "A04", "barcode": stranger, "line": 4}]
    assert shown["no_read"] == [{"position": "A05", "barcode": None, "line": 5, "expected": None}]
    assert [(e["line"], e["position"], e["barcode"]) for e in shown["errors"]] == [
        (6, "Z01", tubes[3])
    ]
    assert position_of(tubes[2]) is None  # a preview writes nothing


def test_the_command_applies_with_apply_and_names_the_box_with_box(app, rack, tubes, tmp_path):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.store(tubes[1], RACK, "A02", actor=None)
    data = csv(("A01", tubes[1]), ("A02", tubes[0]), ("A03", tubes[2]), rack=None)
    result = run(app, tmp_path, data, "--box", RACK, "--apply", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["moved"]) == 3
    _db.session.expire_all()
    assert [position_of(code)[1] for code in tubes[:3]] == ["A02", "A01", "A03"]
    again = run(app, tmp_path, data, "--box", RACK)
    assert again.exit_code == 0 and "3 matched, 0 moved" in again.output


def test_the_command_exits_1_on_an_unknown_box_or_an_unreadable_file(app, rack, tubes, tmp_path):
    unknown_box = run(app, tmp_path, csv(("A01", tubes[0]), rack="BX-0404"), "--json")
    assert unknown_box.exit_code == 1 and "No box with barcode BX-0404" in unknown_box.output
    unreadable = run(app, tmp_path, b"Position,Barcode\nA01\n", "--json")
    assert unreadable.exit_code == 1 and "line 2" in unreadable.output
    no_rack = run(app, tmp_path, csv(("A01", tubes[0]), rack=None))
    assert no_rack.exit_code == 1 and "give the barcode of the box" in no_rack.output


def test_the_command_refuses_to_apply_a_scan_with_errors(app, rack, tubes, tmp_path):
    result = run(app, tmp_path, csv(("A01", tubes[0]), ("A99", tubes[1])), "--apply")
    assert result.exit_code == 1 and "Nothing was applied" in result.output
    _db.session.expire_all()
    assert position_of(tubes[0]) is None


# --- the page ----------------------------------------------------------------------------


@pytest.fixture
def bench(login_as, rack, tubes):
    return login_as("technician")


def upload(client, data, **form):
    return client.post(
        "/storage/rack-scan",
        data={"file": (BytesIO(data), "scan.csv"), **form},
        content_type="multipart/form-data",
    )


def kept_data(page: str) -> str:
    marker = 'name="data" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_the_page_previews_then_applies_the_kept_scan(bench, tubes):
    storage.store(tubes[0], RACK, "A01", actor=None)
    storage.store(tubes[1], RACK, "A02", actor=None)
    shown = upload(bench, csv(("A01", tubes[1]), ("A02", tubes[0]), ("A03", "NO READ")))
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert 'data-count="moved">2<' in page and 'data-count="no_read">1<' in page
    assert 'data-position="A01" data-finding="moved"' in page
    assert position_of(tubes[0]) == (RACK, "A01")  # nothing applied yet
    applied = bench.post(
        "/storage/rack-scan", data={"data": kept_data(page), "box": "", "confirm": "1"}
    )
    assert applied.status_code == 303 and applied.location.endswith(f"/boxes/{RACK}")
    _db.session.expire_all()
    assert position_of(tubes[0]) == (RACK, "A02") and position_of(tubes[1]) == (RACK, "A01")
    box_page = bench.get(applied.location).get_data(as_text=True)
    assert "2 tubes recorded where they were read" in box_page and "1 not read" in box_page


def test_the_page_names_the_line_of_an_unreadable_file(bench):
    shown = upload(bench, b"Position;Barcode\nA01;X;Y\n")
    assert "The rack file cannot be read: line 2" in refused(bench, shown)


def test_a_scan_with_errors_cannot_be_applied_from_the_page(bench, tubes):
    page = upload(bench, csv(("A01", bad_check(tubes[0])))).get_data(as_text=True)
    assert "nothing can be applied" in page and 'name="confirm"' not in page
    forced = {"data": _keep(csv(("A01", bad_check(tubes[0])))), "confirm": "1"}
    answer = bench.post("/storage/rack-scan", data=forced)
    assert "Nothing was applied" in refused(bench, answer)


def test_a_damaged_kept_scan_is_refused(bench):
    answer = bench.post("/storage/rack-scan", data={"data": "not base64!", "confirm": "1"})
    assert "upload the file again" in refused(bench, answer)


def test_researchers_cannot_import_a_rack_scan(login_as, rack):
    assert login_as("researcher").get("/storage/rack-scan").status_code == 403
