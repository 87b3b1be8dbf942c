"""Two technicians at two browsers store two different tubes into the same position at the
same instant, through the scan-to-store page, many times over (SQLite here, PostgreSQL in
CI): one is stored, the other is told the place was taken, never a 500, nothing half-done."""

from __future__ import annotations

import html

import pytest

from biobank.custody import services as custody
from biobank.samples import services as samples
from biobank.storage.positions import Grid
from tests import factories
from tests.races import ROUNDS, race_pages


@pytest.fixture
def many_tubes(freezer, db):
    codes = []
    for n in range(1, 4):
        factories.participant("LIM", code=f"LIM-00{n}")
        codes += [a.barcode for a in factories.visit(f"LIM-00{n}", "BL").aliquots]
    db.session.commit()
    return codes


def store_at(client, code: str, position: str):
    def post():
        return client.post(
            "/storage/scan", data={"box": "BX-0001", "code": code, "target": position}
        )

    return post


@pytest.mark.slow
def test_two_technicians_storing_into_one_position_through_the_pages(app, login_as, many_tubes, db):
    first, second = login_as("technician"), login_as("technician")
    grid = Grid(9, 9)
    for round_ in range(ROUNDS):
        position = grid.label(round_ // 9 + 1, round_ % 9 + 1)
        mine, theirs = many_tubes[2 * round_], many_tubes[2 * round_ + 1]
        answers = race_pages(
            app, [store_at(first, mine, position), store_at(second, theirs, position)]
        )
        assert all(not isinstance(a, Exception) for a in answers), answers
        assert [a.status_code for a in answers] == [303, 303], answers
        pages = [
            html.unescape(client.get(a.location).get_data(as_text=True))
            for client, a in zip((first, second), answers, strict=True)
        ]
        stored = [
            code
            for code, page in zip((mine, theirs), pages, strict=True)
            if f"{code} stored at {position}." in page
        ]
        assert len(stored) == 1, pages
        loser = theirs if stored == [mine] else mine
        loser_page = pages[1] if loser == theirs else pages[0]
        assert f"Position {position} of box BX-0001" in loser_page
        assert stored[0] in loser_page  # it names the tube that took the place

        db.session.expire_all()
        winner = samples.scan_aliquot(stored[0], actor=None)
        lost = samples.scan_aliquot(loser, actor=None)
        assert winner.status == "in_storage" and winner.location.endswith(f"› {position}")
        assert lost.status == "registered" and lost.location is None
        kinds = [e.kind for e in custody.history(lost.id)]
        assert "STORED" not in kinds
    assert custody.verify().intact


def confirm_move(client, code: str):
    """The second scan of a tube the page asked about: it confirms the move."""

    def post():
        return client.post("/storage/scan", data={"box": "BX-0001", "code": code, "pending": code})

    return post


@pytest.mark.slow
def test_two_technicians_confirming_the_move_of_one_tube_move_it_once(
    app, login_as, many_tubes, db
):
    from biobank.storage import services as storage

    first, second = login_as("technician"), login_as("technician")
    moving = many_tubes[:ROUNDS]
    storage.store_many([(code, "BX-0002", None) for code in moving], actor=None)
    db.session.commit()
    for round_, code in enumerate(moving):
        answers = race_pages(app, [confirm_move(first, code), confirm_move(second, code)])
        assert all(not isinstance(a, Exception) for a in answers), answers
        assert [a.status_code for a in answers] == [303, 303], answers
        pages = [
            html.unescape(client.get(a.location).get_data(as_text=True))
            for client, a in zip((first, second), answers, strict=True)
        ]
        position = Grid(9, 9).label(round_ // 9 + 1, round_ % 9 + 1)
        moved = [page for page in pages if f"{code} moved to {position}" in page]
        assert len(moved) == 1, pages
        other = pages[1] if moved[0] is pages[0] else pages[0]
        # The other one is told the truth: the tube is already there, nothing more recorded.
        assert (
            f"{code} is already here at {position}: nothing was recorded." in other
            or f"{code} was just stored at " in other
        ), other

        db.session.expire_all()
        kinds = [e.kind for e in custody.history(samples.find_aliquot(code, actor=None).id)]
        assert kinds == ["REGISTERED", "STORED", "MOVED"]
        assert samples.scan_aliquot(code, actor=None).location.endswith(f"(BX-0001) › {position}")
    assert custody.verify().intact
