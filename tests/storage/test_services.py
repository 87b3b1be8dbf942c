"""Storing, moving, checking out and returning aliquots, and what each writes."""

from __future__ import annotations

import pytest

from biobank.custody import services as custody
from biobank.errors import Conflict, Invalid, NotFound
from biobank.samples import services as samples
from biobank.storage import services as storage
from biobank.study import services as study


def kinds(barcode):
    return [e.kind for e in custody.history(samples.find_aliquot(barcode, actor=None).id)]


def test_tubes_go_to_the_next_free_positions_in_fill_order(tubes):
    placed = [storage.store(code, "BX-0001", actor=None).position for code in tubes[:3]]
    assert placed == ["A1", "A2", "A3"]
    well = storage.box_map("BX-0001", actor=None).wells
    assert [w.barcode for w in well[:4]] == [*tubes[:3], None]
    assert storage.box_map("BX-0001", actor=None).free == 78


def test_storing_writes_a_stored_event_with_the_location(tubes):
    stored = storage.store(tubes[0], "bx-0001", "b4", actor=None)
    assert stored.position == "B4"
    assert stored.location == "Freezer −80 n°1 › Shelf 1 › Rack A › Box 1 (BX-0001) › B4"
    event = custody.history(stored.aliquot.id)[-1]
    assert (event.kind, event.to_location) == ("STORED", stored.location)
    assert stored.aliquot.status == "in_storage"


def test_the_scan_shows_where_the_tube_is(tubes):
    storage.store(tubes[0], "BX-0001", "C7", actor=None)
    assert samples.scan_aliquot(tubes[0], actor=None).location.endswith("(BX-0001) › C7")
    assert samples.scan_aliquot(tubes[1], actor=None).location is None


def test_a_taken_position_is_refused_naming_its_holder(tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    with pytest.raises(Conflict, match=tubes[0]) as refused:
        storage.store(tubes[1], "BX-0001", "A01", actor=None)
    assert refused.value.code == "position.taken"


def test_a_stored_tube_moves_only_when_confirmed(tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    with pytest.raises(Conflict, match="Confirm") as asked:
        storage.store(tubes[0], "BX-0002", "A1", actor=None)
    assert asked.value.code == "storage.confirm_move"
    moved = storage.store(tubes[0], "BX-0002", "A1", move=True, actor=None)
    assert moved.moved_from.endswith("(BX-0001) › A1")
    event = custody.history(moved.aliquot.id)[-1]
    assert event.kind == "MOVED" and event.from_location == moved.moved_from
    assert storage.box_map("BX-0001", actor=None).free == 81


@pytest.mark.parametrize(
    ("position", "message"), [("J1", "outside"), ("A10", "outside"), ("11", "position")]
)
def test_a_position_outside_the_box_is_refused_naming_it(tubes, position, message):
    with pytest.raises(Invalid, match=message) as refused:
        storage.store(tubes[0], "BX-0001", position, actor=None)
    assert refused.value.fields == {"position": position}


def test_a_full_box_says_so(tubes, db):
    storage.create_container_type("2-place test box", "box", rows=1, cols=2, actor=None)
    storage.create_container(
        "box", "Tiny", parent="RK-0001", barcode="BX-0009", type_name="2-place test box", actor=None
    )
    storage.store(tubes[0], "BX-0009", actor=None)
    storage.store(tubes[1], "BX-0009", actor=None)
    with pytest.raises(Conflict, match="full"):
        storage.store(tubes[2], "BX-0009", actor=None)


def test_a_minus_80_sample_is_refused_in_a_minus_20_freezer(tubes):
    with pytest.raises(Conflict, match="-80 °C or colder") as refused:
        storage.store(tubes[0], "BX-0020", actor=None)
    assert refused.value.code == "storage.temperature"


def test_nothing_is_stored_after_consent_withdrawal(tubes, db):
    study.withdraw_consent(
        "LIM-001", study.get_participant("LIM-001", actor=None).included_on, actor=None
    )
    with pytest.raises(Conflict, match="consent"):
        storage.store(tubes[0], "BX-0001", actor=None)


def test_a_centre_user_cannot_use_another_sites_boxes(tubes, make_user):
    paris = make_user("technician", site="PAR")
    with pytest.raises(NotFound):
        storage.box_map("BX-0001", actor=paris)


def test_check_out_and_return_keep_the_position_and_count_the_thaw(tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    with pytest.raises(Invalid, match="reason"):
        storage.check_out(tubes[0], "", actor=None)
    aliquot = storage.check_out(tubes[0], "VEGF ELISA", destination="Lab B", actor=None)
    assert aliquot.status == "checked_out"
    assert storage.box_map("BX-0001", actor=None).wells[0].status == "checked_out"
    back = storage.return_aliquot(tubes[0], 350, thawed=True, actor=None)
    assert back.position == "A1"
    assert (aliquot.status, aliquot.volume_ul, aliquot.freeze_thaw_count) == ("in_storage", 350, 1)
    assert kinds(tubes[0])[-3:] == ["STORED", "CHECKED_OUT", "RETURNED"]
    assert custody.verify().intact


def test_a_return_can_go_elsewhere_and_cannot_add_volume(tubes):
    storage.store(tubes[0], "BX-0001", "A1", actor=None)
    storage.check_out(tubes[0], "aliquoting", actor=None)
    with pytest.raises(Invalid, match="volume"):
        storage.return_aliquot(tubes[0], 900, thawed=False, actor=None)
    back = storage.return_aliquot(
        tubes[0], 500, thawed=False, box="BX-0002", position="I9", actor=None
    )
    assert back.position == "I9" and back.moved_from.endswith("(BX-0001) › A1")


def test_containers_go_only_where_they_fit(freezer):
    with pytest.raises(Invalid, match="cannot go into"):
        storage.create_container(
            "freezer", "Odd", parent="BX-0001", temperature_class="-80", actor=None
        )
    with pytest.raises(Invalid, match="type"):
        storage.create_container("box", "No grid", parent="RK-0001", actor=None)
    with pytest.raises(Invalid, match="temperature class"):
        storage.create_container("freezer", "No class", parent="RM-114", actor=None)
    box = storage.create_container(
        "box", "Auto", parent="RK-0001", type_name="81-place 2-inch cryobox", actor=None
    )
    assert box.barcode.startswith("BX-")


def test_boxes_are_listed_with_their_free_positions(tubes):
    storage.store(tubes[0], "BX-0002", actor=None)
    page = storage.list_containers(kind="box", actor=None)
    free = {b.barcode: (b.rows, b.cols, b.free) for b in page.items}
    assert free == {"BX-0001": (9, 9, 81), "BX-0002": (9, 9, 80), "BX-0020": (9, 9, 81)}
    assert page.total == 3


def test_many_tubes_are_stored_at_once_all_or_nothing(tubes, db):
    stored = storage.store_many([(code, "BX-0002", None) for code in tubes[:4]], actor=None)
    db.session.commit()
    assert stored == 4
    wells = storage.box_map("BX-0002", actor=None).wells
    assert [w.barcode for w in wells[:4]] == tubes[:4]
    assert [kinds(code)[-1] for code in tubes[:4]] == ["STORED"] * 4
    assert custody.verify().intact
    with pytest.raises(Conflict, match="taken"):
        storage.store_many([(tubes[4], "BX-0002", None), (tubes[5], "BX-0002", "A1")], actor=None)
    db.session.rollback()
    assert samples.scan_aliquot(tubes[4], actor=None).status == "registered"
    with pytest.raises(Conflict, match="already stored"):
        storage.store_many([(tubes[0], "BX-0001", None)], actor=None)


@pytest.mark.parametrize(("rows", "cols"), [(9, 9), (10, 10), (8, 12), (1, 99)])
def test_the_databases_position_labels_are_the_grids(db, rows, cols):
    """The scan composes the location in SQL; it must print positions as the grid does."""
    import sqlalchemy as sa

    from biobank.storage.positions import grid_for

    grid = grid_for(rows, cols)
    cells = [(1, 1), (rows, cols), (min(2, rows), min(9, cols)), (rows, 1)]
    for row, col in cells:
        label = storage.position_label_sql(sa.literal(row), sa.literal(col), sa.literal(cols))
        assert db.session.execute(sa.select(label)).scalar() == grid.label(row, col)
